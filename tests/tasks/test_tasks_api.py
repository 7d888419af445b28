"""Task board over the main API and the seed routes: permissions, versions, finish, history."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from fxdesk.users.models import Role
from tests.conftest import ClientFactory, UserFactory
from tests.factories import signed_in


async def _create(client: httpx.AsyncClient, title: str, **extra: object) -> dict[str, Any]:
    response = await client.post("/api/v1/tasks", json={"title": title, **extra})
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


@pytest.mark.parametrize("role", [Role.user, Role.moderator, Role.admin])
async def test_every_task_route_against_every_role(
    role: Role, make_client: ClientFactory, make_user: UserFactory, app
) -> None:
    _owner, owner_client = await signed_in(app, make_client, make_user)
    actor, client = await signed_in(app, make_client, make_user, role)
    staff = role in (Role.moderator, Role.admin)

    own = await _create(client, f"own task of {role}")
    others = await _create(owner_client, f"owner's task for {role}")
    assert own["created_by"]["id"] == actor.id and own["version"] == 1

    # read: everyone
    assert (await client.get(f"/api/v1/tasks/{others['id']}")).status_code == 200
    assert (await client.get("/api/v1/tasks")).json()["total"] == 2
    # edit own: everyone; edit someone else's: staff only
    edited = await client.patch(
        f"/api/v1/tasks/{own['id']}", json={"description": "mine"}, headers={"If-Match": '"1"'}
    )
    assert edited.status_code == 200 and edited.json()["version"] == 2
    assert edited.headers["etag"] == '"2"'
    foreign = await client.patch(
        f"/api/v1/tasks/{others['id']}", json={"description": "theirs", "version": 1}
    )
    assert foreign.status_code == (200 if staff else 403)
    # finish any open task: everyone
    finished = await client.post(f"/api/v1/tasks/{others['id']}/finish")
    assert finished.status_code == 200
    assert finished.json()["finished_by"]["id"] == actor.id
    assert finished.json()["status"] == "done" and finished.json()["finished_at"]
    # reopen, delete, restore: staff only
    reopen = await client.post(f"/api/v1/tasks/{others['id']}/reopen")
    assert reopen.status_code == (200 if staff else 403)
    delete = await client.delete(f"/api/v1/tasks/{own['id']}")
    assert delete.status_code == (200 if staff else 403)
    if not staff:
        assert delete.json() == {"detail": "Permission denied"}
        assert (await owner_client.get(f"/api/v1/tasks/{own['id']}")).status_code == 200
    restore = await client.post(f"/api/v1/tasks/{own['id']}/restore")
    assert restore.status_code == (200 if staff else 403)
    history = await client.get(f"/api/v1/tasks/{others['id']}/history")
    assert history.status_code == 200


async def test_two_concurrent_finishes_one_wins(
    make_client: ClientFactory, make_user: UserFactory, app
) -> None:
    alice, alice_client = await signed_in(app, make_client, make_user)
    bob, bob_client = await signed_in(app, make_client, make_user)
    for round_ in range(5):
        task = await _create(alice_client, f"race {round_}")
        a, b = await asyncio.gather(
            alice_client.post(f"/api/v1/tasks/{task['id']}/finish"),
            bob_client.post(f"/api/v1/tasks/{task['id']}/finish"),
        )
        assert sorted([a.status_code, b.status_code]) == [200, 409]
        winner = alice if a.status_code == 200 else bob
        loser = b if a.status_code == 200 else a
        assert loser.json() == {"detail": "Task is already finished"}
        stored = (await alice_client.get(f"/api/v1/tasks/{task['id']}")).json()
        assert stored["finished_by"]["id"] == winner.id
        history = (await alice_client.get(f"/api/v1/tasks/{task['id']}/history")).json()
        assert [h["action"] for h in history] == ["created", "finished"]
        assert history[1]["actor"]["id"] == winner.id


async def test_two_concurrent_deletes_and_restores_one_wins(
    make_client: ClientFactory, make_user: UserFactory, app
) -> None:
    _, first = await signed_in(app, make_client, make_user, Role.moderator)
    _, second = await signed_in(app, make_client, make_user, Role.admin)
    for round_ in range(5):
        task = await _create(first, f"delete race {round_}")
        a, b = await asyncio.gather(
            first.delete(f"/api/v1/tasks/{task['id']}"),
            second.delete(f"/api/v1/tasks/{task['id']}"),
        )
        assert sorted([a.status_code, b.status_code]) == [200, 404]
        a, b = await asyncio.gather(
            first.post(f"/api/v1/tasks/{task['id']}/restore"),
            second.post(f"/api/v1/tasks/{task['id']}/restore"),
        )
        assert sorted([a.status_code, b.status_code]) == [200, 409]
        history = (await first.get(f"/api/v1/tasks/{task['id']}/history")).json()
        assert [h["action"] for h in history] == ["created", "deleted", "restored"]
        stored = (await first.get(f"/api/v1/tasks/{task['id']}")).json()
        assert stored["version"] == 3


async def test_stale_edit_gets_412_and_changes_nothing(
    make_client: ClientFactory, make_user: UserFactory, app
) -> None:
    _, client = await signed_in(app, make_client, make_user, Role.moderator)
    task = await _create(client, "versioned")
    first = await client.patch(
        f"/api/v1/tasks/{task['id']}", json={"title": "first edit"}, headers={"If-Match": '"1"'}
    )
    assert first.status_code == 200
    stale = await client.patch(
        f"/api/v1/tasks/{task['id']}", json={"title": "stale edit"}, headers={"If-Match": '"1"'}
    )
    assert stale.status_code == 412
    body = stale.json()
    assert body["current"]["title"] == "first edit" and body["current"]["version"] == 2
    missing = await client.patch(f"/api/v1/tasks/{task['id']}", json={"title": "no version"})
    assert missing.status_code == 428
    bad = await client.patch(
        f"/api/v1/tasks/{task['id']}", json={"title": "x"}, headers={"If-Match": "garbage"}
    )
    assert bad.status_code == 422
    now = (await client.get(f"/api/v1/tasks/{task['id']}")).json()
    assert now["title"] == "first edit" and now["version"] == 2
    history = (await client.get(f"/api/v1/tasks/{task['id']}/history")).json()
    assert [h["action"] for h in history] == ["created", "updated"]
    assert history[1]["changes"] == {"title": ["versioned", "first edit"]}


async def test_soft_delete_hides_and_restore_brings_back(
    make_client: ClientFactory, make_user: UserFactory, app
) -> None:
    _, client = await signed_in(app, make_client, make_user, Role.admin)
    task = await _create(client, "Deletable")
    await _create(client, "Keeper")
    assert (await client.delete(f"/api/v1/tasks/{task['id']}")).status_code == 200
    listing = (await client.get("/api/v1/tasks")).json()
    assert [t["title"] for t in listing["items"]] == ["Keeper"] and listing["total"] == 1
    # staff (who may restore it) still open it; it says it is deleted
    gone = await client.get(f"/api/v1/tasks/{task['id']}")
    assert gone.status_code == 200 and gone.json()["deleted_at"] is not None
    restored = await client.post(f"/api/v1/tasks/{task['id']}/restore")
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    listing = (await client.get("/api/v1/tasks")).json()
    assert {t["title"] for t in listing["items"]} == {"Deletable", "Keeper"}
    # a deleted task's title is free again; restoring then would clash
    await client.delete(f"/api/v1/tasks/{task['id']}")
    await _create(client, "deletable")
    clash = await client.post(f"/api/v1/tasks/{task['id']}/restore")
    assert clash.status_code == 409


async def test_history_lists_every_change_with_its_actor(
    make_client: ClientFactory, make_user: UserFactory, app
) -> None:
    author, author_client = await signed_in(app, make_client, make_user)
    mod, mod_client = await signed_in(app, make_client, make_user, Role.moderator)
    task = await _create(author_client, "chronicle")
    await author_client.patch(
        f"/api/v1/tasks/{task['id']}", json={"priority": "urgent", "version": 1}
    )
    await mod_client.post(f"/api/v1/tasks/{task['id']}/finish")
    await mod_client.post(f"/api/v1/tasks/{task['id']}/reopen")
    await mod_client.delete(f"/api/v1/tasks/{task['id']}")
    await mod_client.post(f"/api/v1/tasks/{task['id']}/restore")
    history = (await author_client.get(f"/api/v1/tasks/{task['id']}/history")).json()
    assert [(h["action"], h["actor"]["id"]) for h in history] == [
        ("created", author.id),
        ("updated", author.id),
        ("finished", mod.id),
        ("reopened", mod.id),
        ("deleted", mod.id),
        ("restored", mod.id),
    ]
    assert history[1]["changes"] == {"priority": ["normal", "urgent"]}


async def test_list_filters_sort_and_pages(
    make_client: ClientFactory, make_user: UserFactory, app
) -> None:
    alice, alice_client = await signed_in(app, make_client, make_user)
    bob, bob_client = await signed_in(app, make_client, make_user)
    for title in ("banana", "apple", "cherry"):
        await _create(alice_client, title, description=f"fruit {title}")
    done = await _create(bob_client, "durian")
    await alice_client.post(f"/api/v1/tasks/{done['id']}/finish")

    async def titles(**params: Any) -> list[str]:
        response = await alice_client.get("/api/v1/tasks", params=params)
        assert response.status_code == 200, response.text
        return [t["title"] for t in response.json()["items"]]

    assert await titles(sort="title") == ["apple", "banana", "cherry", "durian"]
    assert await titles(sort="-title", limit=2) == ["durian", "cherry"]
    assert await titles(sort="title", limit=2, offset=2) == ["cherry", "durian"]
    assert await titles(status="done") == ["durian"]
    assert await titles(created_by=bob.id) == ["durian"]
    assert await titles(finished_by=alice.id) == ["durian"]
    assert await titles(q="FRUIT ch") == ["cherry"]
    assert await titles(q="100%_") == []
    assert await titles(sort="-created_at") == ["durian", "cherry", "apple", "banana"]
    page = (await alice_client.get("/api/v1/tasks", params={"limit": 1})).json()
    assert page["total"] == 4 and page["limit"] == 1 and len(page["items"]) == 1
    for bad in (
        {"sort": "password"},
        {"limit": 500},
        {"status": "maybe"},
        {"updated_since": "2026-01-01T00:00:00"},
    ):
        assert (await alice_client.get("/api/v1/tasks", params=bad)).status_code == 422


# --- the seed routes ---------------------------------------------------------------


async def test_seed_task_routes_and_texts(
    make_client: ClientFactory, make_user: UserFactory, app
) -> None:
    user, client = await signed_in(app, make_client, make_user)
    _, mod_client = await signed_in(app, make_client, make_user, Role.moderator)
    created = await client.post(
        "/tasks/create_task", json={"title": "Seed task", "description": "from the seed"}
    )
    assert created.status_code == 200
    task = created.json()
    assert set(task) == {
        "id",
        "title",
        "description",
        "created_by",
        "finished_by",
        "date_of_start",
        "date_of_finish",
    }
    assert task["created_by"] == user.username and task["finished_by"] is None

    duplicate = await client.post("/tasks/create_task", json={"title": "seed TASK"})
    assert duplicate.status_code == 409
    assert duplicate.json() == {"detail": "Task with such name already exists"}

    empty = await client.put(f"/tasks/update_task?id={task['id']}", json={})
    assert empty.status_code == 400
    assert empty.json() == {"detail": "You must provide at least one parameter"}
    updated = await client.put(f"/tasks/update_task?id={task['id']}", json={"title": "Renamed"})
    assert updated.status_code == 200 and updated.json()["title"] == "Renamed"

    unknown = await client.put("/tasks/finish_task?id=999999")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Such Task does not exist"}
    finished = await client.put(f"/tasks/finish_task?id={task['id']}")
    assert finished.status_code == 200
    assert finished.json()["finished_by"] == user.username
    assert finished.json()["date_of_finish"] is not None

    denied = await client.delete(f"/tasks/delete_task?id={task['id']}")
    assert denied.status_code == 403 and denied.json() == {"detail": "Permission denied"}
    deleted = await mod_client.delete(f"/tasks/delete_task?id={task['id']}")
    assert deleted.status_code == 200 and deleted.json()["id"] == task["id"]
    gone = await mod_client.delete(f"/tasks/delete_task?id={task['id']}")
    assert gone.status_code == 404 and gone.json() == {"detail": "Such Task does not exist"}


async def test_seed_update_of_someone_elses_task_is_refused(
    make_client: ClientFactory, make_user: UserFactory, app
) -> None:
    _, owner = await signed_in(app, make_client, make_user)
    _, other = await signed_in(app, make_client, make_user)
    task = (await owner.post("/tasks/create_task", json={"title": "Mine only"})).json()
    refused = await other.put(f"/tasks/update_task?id={task['id']}", json={"title": "Hijack"})
    assert refused.status_code == 403 and refused.json() == {"detail": "Permission denied"}


@pytest.mark.parametrize("role", [Role.user, Role.moderator, Role.admin])
async def test_a_deleted_task_is_hidden_the_same_way_on_every_route(
    role: Role, make_client: ClientFactory, make_user: UserFactory, app
) -> None:
    """Whoever may not see a deleted task may not see it through its history either."""
    _owner, owner_client = await signed_in(app, make_client, make_user)
    _mod, mod_client = await signed_in(app, make_client, make_user, Role.moderator)
    _reader, client = await signed_in(app, make_client, make_user, role)
    task = await _create(owner_client, f"soon deleted, seen by {role}")
    assert (await mod_client.delete(f"/api/v1/tasks/{task['id']}")).status_code == 200

    one = await client.get(f"/api/v1/tasks/{task['id']}")
    history = await client.get(f"/api/v1/tasks/{task['id']}/history")
    listed = (await client.get("/api/v1/tasks")).json()["items"]
    assert task["id"] not in [item["id"] for item in listed]
    if role == Role.user:
        assert (one.status_code, history.status_code) == (404, 404)
        assert one.json() == history.json() == {"detail": "Such Task does not exist"}
        # the task's own creator included
        assert (await owner_client.get(f"/api/v1/tasks/{task['id']}/history")).status_code == 404
    else:
        assert one.status_code == 200 and one.json()["deleted_at"] is not None
        assert [entry["action"] for entry in history.json()] == ["created", "deleted"]
