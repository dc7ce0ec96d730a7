"""Next image, leases, skipping and who may see what; concurrency over real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import httpx
import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from annotate.api.ratelimit import DatabaseLimiter, LoginLimiter
from annotate.errors import Conflict, InvalidInput, NotFound
from annotate.services.assignments import (
    can_view_image,
    next_assignment,
    skip_assignment,
    today_counts,
)
from db.blobstore import BlobStore
from db.models import Assignment, AssignmentStatus, Image, Project, utcnow
from tests.support import factories
from tests.support.server import login

# --- helpers shared by this topic's tests -----------------------------------------------------------


def make_project(session, name: str = "p", **limits) -> Project:
    project = factories.add_project(session, name, **{"min_seconds": 2, "max_seconds": 20, **limits})
    session.commit()
    return project


def add_images(session, blobs: BlobStore, project: Project, count: int) -> list[Image]:
    """Real JPEGs (and thumbnails) in the blob store, one colour each."""
    images = []
    for n in range(count):
        picture = PILImage.new("RGB", (320, 200), ((n * 53) % 256, (n * 97) % 256, (n * 31) % 256))
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG")
        picture.thumbnail((160, 160))
        thumb = io.BytesIO()
        picture.save(thumb, "JPEG")
        thumb_key, _ = blobs.put_bytes(thumb.getvalue(), suffix=".thumb.jpg")
        images.append(
            factories.add_image(
                session,
                project,
                blobs=blobs,
                data=buffer.getvalue(),
                source=f"test://{n}",
                thumb_key=thumb_key,
                width=320,
                height=200,
            )
        )
    session.commit()
    return images


def fast_logins(app) -> None:
    """Tests log in many users from one address; the login limit is tested in test_auth_api."""
    app.state.login_limiter = LoginLimiter(DatabaseLimiter(app.state.sessions), 10_000, 10_000)


# --- service ---------------------------------------------------------------------------------------


def test_next_image_is_held_on_a_lease_and_returned_again(session, settings, blobs, make_user) -> None:
    project = make_project(session)
    images = add_images(session, blobs, project, 3)
    ann, _ = make_user("ann")
    first = next_assignment(session, settings, user=ann, project=project)
    session.commit()
    assert first is not None and first.image_id == images[0].id
    assert first.status == AssignmentStatus.leased and first.lease_until > utcnow()
    again = next_assignment(session, settings, user=ann)
    session.commit()
    assert again is not None and again.id == first.id  # a reloaded tab gets the same image back


def test_per_image_limit_is_respected(session, settings, blobs, make_user) -> None:
    project = make_project(session, per_image=2)
    images = add_images(session, blobs, project, 2)
    users = [make_user(f"u{n}")[0] for n in range(5)]
    got = []
    for user in users:
        assignment = next_assignment(session, settings, user=user, project=project)
        session.commit()
        got.append(assignment.image_id if assignment else None)
    assert got == [images[0].id, images[0].id, images[1].id, images[1].id, None]


def test_lapsed_lease_returns_the_image_to_the_pool(session, settings, blobs, make_user) -> None:
    project = make_project(session)
    (image,) = add_images(session, blobs, project, 1)
    ann, _ = make_user("ann")
    bob, _ = make_user("bob")
    held = next_assignment(session, settings, user=ann, project=project)
    session.commit()
    assert held is not None
    assert next_assignment(session, settings, user=bob, project=project) is None
    later = utcnow() + timedelta(minutes=settings.assignment_lease_minutes + 1)
    taken = next_assignment(session, settings, user=bob, project=project, now=later)
    session.commit()
    assert taken is not None and taken.image_id == image.id and taken.user_id == bob.id
    # Ann's abandoned tab asks again: her lease is marked expired and nothing is left for her.
    assert next_assignment(session, settings, user=ann, project=project, now=later) is None
    session.commit()
    session.refresh(held)
    assert held.status == AssignmentStatus.expired


def test_skipped_image_is_not_offered_again_and_reason_is_kept(session, settings, blobs, make_user) -> None:
    project = make_project(session)
    images = add_images(session, blobs, project, 2)
    ann, _ = make_user("ann")
    bob, _ = make_user("bob")
    first = next_assignment(session, settings, user=ann, project=project)
    assert first is not None
    with pytest.raises(InvalidInput):
        skip_assignment(session, user=ann, assignment_id=first.id, reason="because")
    with pytest.raises(InvalidInput):
        skip_assignment(session, user=ann, assignment_id=first.id, reason="other")  # needs a note
    with pytest.raises(NotFound):
        skip_assignment(session, user=bob, assignment_id=first.id, reason="image_broken")
    skip_assignment(session, user=ann, assignment_id=first.id, reason="image_broken")
    session.commit()
    assert first.skip_reason == "image_broken"
    second = next_assignment(session, settings, user=ann, project=project)
    session.commit()
    assert second is not None and second.image_id == images[1].id
    # The skipped image goes back to the pool for others.
    other = next_assignment(session, settings, user=bob, project=project)
    assert other is not None and other.image_id == images[0].id
    assert today_counts(session, ann, utcnow() - timedelta(hours=1)).skipped == 1
    submitted = session.get(Assignment, second.id)
    assert submitted is not None
    submitted.status = AssignmentStatus.submitted
    with pytest.raises(Conflict):
        skip_assignment(session, user=ann, assignment_id=second.id, reason="inappropriate")


def test_annotators_see_only_images_of_their_own_assignments(session, settings, blobs, make_user) -> None:
    project = make_project(session)
    images = add_images(session, blobs, project, 2)
    ann, _ = make_user("ann")
    lead, _ = make_user("lea", "lead")
    assignment = next_assignment(session, settings, user=ann, project=project)
    session.commit()
    assert assignment is not None
    assert can_view_image(session, ann, images[0].id)
    assert not can_view_image(session, ann, images[1].id)
    assert can_view_image(session, lead, images[1].id)
    skip_assignment(session, user=ann, assignment_id=assignment.id, reason="image_broken")
    session.commit()
    assert not can_view_image(session, ann, images[0].id)


# --- HTTP ------------------------------------------------------------------------------------------


def test_next_image_over_http_and_image_access(server, app, session, blobs, make_user) -> None:
    project = make_project(session, name="Street scenes")
    images = add_images(session, blobs, project, 2)
    make_user("ann")
    make_user("bob")
    make_user("lea", "lead")
    ann = login(server, "ann", "correct-horse")
    bob = login(server, "bob", "correct-horse")
    lead = login(server, "lea", "correct-horse")

    body = ann.post("/api/tasks/next", json={}).json()
    task = body["task"]
    assert task["image"]["id"] == images[0].id and task["project"]["name"] == "Street scenes"
    assert task["project"]["questions"] and body["skip_reasons"][0]["code"] == "image_broken"
    assert body["today"] == {"recordings": 0, "skipped": 0, "seconds": 0.0}
    original = ann.get(task["image"]["url"])
    assert original.status_code == 200 and original.headers["content-type"] == "image/jpeg"
    assert original.content == blobs.read_bytes(images[0].blob_key)
    assert ann.get(task["image"]["thumbnail_url"]).status_code == 200

    denied = bob.get(task["image"]["url"])
    assert denied.status_code == 403 and denied.json()["code"] == "image_not_assigned"
    assert lead.get(f"/api/images/{images[1].id}/original").status_code == 200
    assert httpx.get(f"{server}{task['image']['url']}").json()["code"] == "not_authenticated"

    no_csrf = httpx.post(f"{server}/api/tasks/next", json={}, cookies=ann.cookies)
    assert no_csrf.status_code == 403 and no_csrf.json()["code"] == "csrf_failed"
    skipped = ann.post(f"/api/tasks/{task['assignment_id']}/skip", json={"reason": "inappropriate"})
    assert skipped.status_code == 200 and skipped.json()["skipped"] == 1
    bad = ann.post(f"/api/tasks/{task['assignment_id']}/skip", json={"reason": "nope"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_input"
    assert bob.post(f"/api/tasks/{task['assignment_id']}/renew").json()["code"] == "assignment_not_found"
    nxt = ann.post("/api/tasks/next", json={"project_id": project.id}).json()
    assert nxt["task"]["image"]["id"] == images[1].id
    done = bob.post("/api/tasks/next", json={}).json()
    assert done["task"]["image"]["id"] == images[0].id  # the skipped image went back to the pool
    empty = lead.post("/api/tasks/next", json={}).json()
    assert empty["task"] is None and "no images left" in empty["message"]


@pytest.mark.parametrize("per_image", [1, 2])
def test_concurrent_next_image_requests_never_share_a_slot(
    server, app, session, blobs, make_user, per_image: int
) -> None:
    fast_logins(app)
    project = make_project(session, per_image=per_image)
    image_count = 3
    add_images(session, blobs, project, image_count)
    annotators = 8
    clients = []
    for n in range(annotators):
        make_user(f"a{n}")
        clients.append(login(server, f"a{n}", "correct-horse"))
    barrier = threading.Barrier(annotators)
    results: list[object] = [None] * annotators

    def ask(n: int) -> None:
        barrier.wait(timeout=30)
        response = clients[n].post("/api/tasks/next", json={"project_id": project.id})
        results[n] = response.json() if response.status_code == 200 else response.text

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(annotators)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(isinstance(r, dict) for r in results), results
    taken = [r["task"]["image"]["id"] for r in results if r["task"]]
    counts = {image_id: taken.count(image_id) for image_id in taken}
    assert len(taken) == min(annotators, image_count * per_image)
    assert all(c <= per_image for c in counts.values()), counts
    session.expire_all()
    live = session.scalar(
        select(func.count()).select_from(Assignment).where(Assignment.status == AssignmentStatus.leased)
    )
    assert live == len(taken)
