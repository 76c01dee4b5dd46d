"""Roles beyond the route matrix (test_authorization.py): me, owner=me, listing, Authorizer."""

from __future__ import annotations

import pytest

from .helpers import ADMIN, USER

pytestmark = pytest.mark.usefixtures("multi_user")

SECRET = {"name": "EXISTING", "value": "v"}


async def test_me_tells_each_user_their_role(api):
    _, alice = await api("GET", "me", headers=ADMIN)
    _, bob = await api("GET", "me", headers=USER)
    assert (alice["username"], alice["role"], alice["can_write"]) == ("alice", "admin", True)
    assert (bob["username"], bob["role"], bob["can_write"]) == ("bob", "user", False)


async def test_owner_me_is_per_user(api):
    await api("POST", "secrets", body=SECRET, headers=ADMIN)
    _, alice = await api("GET", "secrets", params={"owner": "me"}, headers=ADMIN)
    _, bob = await api("GET", "secrets", params={"owner": "me"}, headers=USER)
    assert [s["owner"] for s in alice["secrets"]] == ["alice"]
    assert bob["secrets"] == []


@pytest.fixture
def admins_only_listing(secrets_config):
    secrets_config["users_can_list"] = False


@pytest.mark.usefixtures("admins_only_listing")
async def test_listing_can_be_restricted_to_admins(api):
    await api("POST", "secrets", body=SECRET, headers=ADMIN)
    assert (await api("GET", "secrets", headers=USER))[0] == 403
    assert (await api("GET", "secrets", "EXISTING", headers=USER))[0] == 403
    assert (await api("GET", "secrets", "MISSING", headers=USER))[0] == 403
    _, me = await api("GET", "me", headers=USER)
    assert me["can_list"] is False
    assert (await api("GET", "secrets", headers=ADMIN))[0] == 200


@pytest.fixture
def jupyter_authorizer_denies_writes(jp_server_config):
    jp_server_config["ServerApp"]["authorizer_class"] = "tests.identities.ReadOnlyAuthorizer"


@pytest.mark.usefixtures("jupyter_authorizer_denies_writes")
async def test_jupyter_authorizer_is_respected(api):
    """A deployment's own Authorizer can veto the action even for a secrets admin."""
    status, _ = await api("POST", "secrets", body=SECRET, headers=ADMIN)
    assert status == 403
    assert (await api("GET", "secrets", headers=ADMIN))[0] == 200
