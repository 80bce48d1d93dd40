"""The watcher over a real folder, a real Qdrant Edge store, the bundled MiniLM and real
file-system events (watchfiles): what is on disk becomes what is searchable, whatever way the
disk changed (edits, deletions, atomic saves, bursts, files vanishing mid-read, while the
watcher was down), and nothing else (ignored paths, the store's own writes)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import MakeRetrieval
from watch_support import git, hits_text, poll, sources, write_atomic

from server.ingest.runner import run_ingest
from server.ingest.watch import Watcher
from server.ingest.watch_roots import WatchRoot
from server.retrieval import freshness
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import Retrieval, assemble
from server.settings import Domain, IngestSettings, Settings

TENANT = "acme"

StartWatcher = Callable[..., Watcher]


@pytest.fixture
def retrieval(make_retrieval: MakeRetrieval) -> Retrieval:
    """Small chunks, so short test files make several."""
    return make_retrieval(ingest=IngestSettings(chunk_tokens=64, max_file_bytes=100_000))


@pytest.fixture
def start_watcher(retrieval: Retrieval) -> Iterator[StartWatcher]:
    """Starts watchers on the test's store (stopped at the end); waits for their catch-up."""
    started: list[Watcher] = []

    def start(*roots: Path, domain: str = "docs", **kwargs: object) -> Watcher:
        watch_roots = [WatchRoot.of(r, domain) for r in roots]
        watcher = Watcher(
            retrieval.indexer, watch_roots, TENANT, settings=retrieval.settings, **kwargs
        )
        started.append(watcher)
        watcher.start()
        assert watcher.wait_caught_up(120), "the catch-up did not finish"
        return watcher

    yield start
    for watcher in started:
        watcher.stop()


def _docs(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_edited_file_is_found_with_its_new_text_and_a_deleted_one_is_gone(
    tmp_path: Path, retrieval: Retrieval, start_watcher: StartWatcher
) -> None:
    root = _docs(
        tmp_path / "docs",
        {
            "quokka.md": "# Quokka\n\nThe quokka lives on Rottnest island.\n",
            "pangolin.md": "# Pangolin\n\nThe pangolin eats ants and termites.\n",
        },
    )
    start_watcher(root)
    real = root.resolve()
    assert sources(retrieval, TENANT) == {f"{real}/quokka.md", f"{real}/pangolin.md"}

    (root / "quokka.md").write_text("# Quokka\n\nThe wombat digs burrows under the heath.\n")
    (root / "pangolin.md").unlink()
    poll(lambda: "wombat digs burrows" in hits_text(retrieval, TENANT, "wombat burrows"), "edit")
    poll(lambda: sources(retrieval, TENANT) == {f"{real}/quokka.md"}, "the deletion")
    assert "Rottnest" not in hits_text(retrieval, TENANT, "quokka Rottnest island")
    assert "pangolin" not in hits_text(retrieval, TENANT, "pangolin eats ants")


def test_atomic_saves_and_renames(
    tmp_path: Path, retrieval: Retrieval, start_watcher: StartWatcher
) -> None:
    """An editor's save (temp file renamed over the original) updates the file and leaves no
    temporary source; a rename is the old path gone and the new one added."""
    root = _docs(tmp_path / "notes", {"plan.md": "# Plan\n\nShip the heliotrope release.\n"})
    start_watcher(root)
    real = root.resolve()
    for version in ("saffron", "vermilion", "cerulean"):
        write_atomic(root / "plan.md", f"# Plan\n\nShip the {version} release on Friday.\n")
        poll(
            lambda v=version: f"{v} release" in hits_text(retrieval, TENANT, f"{v} release"),
            f"the {version} save",
        )
    assert sources(retrieval, TENANT) == {f"{real}/plan.md"}
    (root / "plan.md").rename(root / "roadmap.md")
    poll(lambda: sources(retrieval, TENANT) == {f"{real}/roadmap.md"}, "the rename")
    assert "cerulean release" in hits_text(retrieval, TENANT, "cerulean release")


@pytest.mark.slow
def test_a_git_checkout_of_500_files_is_a_few_runs(
    tmp_path: Path, retrieval: Retrieval, start_watcher: StartWatcher
) -> None:
    root = _docs(tmp_path / "repo", {"README.md": "# Repo\n\nA repository of notes.\n"})
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "one file")
    git(root, "checkout", "-q", "-b", "many")
    many = {f"notes/n{i:03}.md": f"# Note {i}\n\nNote number {i} of many.\n" for i in range(500)}
    _docs(root, many)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "500 files")
    git(root, "checkout", "-q", "main")
    watcher = start_watcher(root)
    before = watcher.runs
    git(root, "checkout", "-q", "many")  # one burst of 500 new files
    # the points land batch by batch during the run: it is over once nothing is pending
    poll(
        lambda: len(sources(retrieval, TENANT)) == 501 and watcher.pending() == 0,
        "the 500 files",
        deadline=600,
    )
    runs = watcher.runs - before
    print(f"{runs} ingest run(s) for a checkout adding 500 files")
    assert 1 <= runs <= 5, f"{runs} ingest runs for one checkout"
    git(root, "checkout", "-q", "main")  # and 500 deletions
    poll(lambda: len(sources(retrieval, TENANT)) == 1, "the 500 deletions", deadline=600)
    assert watcher.errors == 0


def test_files_vanishing_mid_read_never_stop_the_watcher(
    tmp_path: Path, retrieval: Retrieval, start_watcher: StartWatcher
) -> None:
    """Files created and deleted as fast as possible (many vanish between the walk and the
    read): skips, never a crash; once the churn stops, the index is exactly the disk."""
    root = _docs(tmp_path / "churn", {"keep.md": "# Keep\n\nThis file stays.\n"})
    watcher = start_watcher(root)
    stop = threading.Event()

    def churn() -> None:
        i = 0
        while not stop.is_set():
            path = root / f"flash{i % 7}.md"
            path.write_text(f"# Flash {i}\n\nA short-lived note {i}.\n" * 20)
            path.unlink()
            i += 1

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        poll(lambda: watcher.runs >= 4, "several runs during the churn", deadline=300)
    finally:
        stop.set()
        thread.join()
    (root / "marker.md").write_text("# Marker\n\nThe albatross marker arrived.\n")
    real = root.resolve()
    poll(
        lambda: sources(retrieval, TENANT) == {f"{real}/keep.md", f"{real}/marker.md"},
        "the index to equal the disk",
    )
    assert watcher.errors == 0
    assert all(t.is_alive() for t in watcher._threads)


def test_a_restart_catches_up_with_what_changed_while_down(
    tmp_path: Path, retrieval: Retrieval, start_watcher: StartWatcher
) -> None:
    root = _docs(
        tmp_path / "docs",
        {"a.md": "# A\n\nAlpha text about lighthouses.\n", "b.md": "# B\n\nBeta about dunes.\n"},
    )
    first = start_watcher(root)
    first.stop()
    real = root.resolve()
    (record,) = freshness.root_freshness(retrieval.store, retrieval.settings, TENANT, Domain.DOCS)
    assert record.root == real.as_posix() and not record.watched and record.synced_at
    (root / "a.md").write_text("# A\n\nAlpha text about glaciers now.\n")
    (root / "b.md").unlink()
    (root / "c.md").write_text("# C\n\nGamma about volcanoes.\n")
    second = start_watcher(root)  # returns after the catch-up
    assert sources(retrieval, TENANT) == {f"{real}/a.md", f"{real}/c.md"}
    assert "glaciers" in hits_text(retrieval, TENANT, "alpha glaciers")
    (after,) = freshness.root_freshness(retrieval.store, retrieval.settings, TENANT, Domain.DOCS)
    assert after.watched and after.status == "fresh" and after.synced_at > record.synced_at
    assert second.runs == 1


def test_ignored_paths_are_dropped_and_a_gitignore_edit_is_re_evaluated(
    tmp_path: Path, retrieval: Retrieval, start_watcher: StartWatcher
) -> None:
    root = _docs(
        tmp_path / "proj",
        {".gitignore": "build/\n*.log.md\n", "guide.md": "# Guide\n\nThe guide.\n"},
    )
    watcher = start_watcher(root)
    real = root.resolve()
    _docs(root, {"build/out.md": "# Out\n\nGenerated output.\n", "x.log.md": "# Log\n\nlog\n"})
    (root / ".hidden.md").write_text("# Hidden\n\nhidden\n")
    (root / "guide.md").write_text("# Guide\n\nThe guide, revised with marmosets.\n")
    poll(lambda: "marmosets" in hits_text(retrieval, TENANT, "guide marmosets"), "the edit")
    assert sources(retrieval, TENANT) == {f"{real}/guide.md"}
    # the ignored files never reached a sync: their events were dropped
    assert {Path(p).name for p in watcher.kept_paths} == {"guide.md"}
    assert watcher.dropped_events >= 3
    (root / ".gitignore").write_text("*.log.md\n")  # build/ is no longer ignored
    poll(
        lambda: sources(retrieval, TENANT) == {f"{real}/guide.md", f"{real}/build/out.md"},
        "the re-evaluated .gitignore",
    )
    (root / ".gitignore").write_text("build/\n*.log.md\n")  # ignored again: removed
    poll(lambda: sources(retrieval, TENANT) == {f"{real}/guide.md"}, "the build/ removal")


def test_the_store_inside_the_watched_root_never_triggers_a_sync(
    tmp_path: Path, embedder: DenseEmbedder
) -> None:
    """The store under the root: its writes (points, freshness records) must not feed back
    into runs, or every run would cause the next one forever."""
    root = _docs(tmp_path / "home", {"a.md": "# A\n\nAardvarks at night.\n"})
    settings = Settings(store_path=root / "index-store", reranker_model="none")
    store = EdgeStore(settings.store_path)
    retrieval = assemble(settings, store, embedder, None)
    watcher = Watcher(retrieval.indexer, [WatchRoot.of(root, "docs")], TENANT, settings=settings)
    try:
        watcher.start()
        assert watcher.wait_caught_up(120)
        for word in ("badgers", "beavers", "bison"):
            write_atomic(root / "a.md", f"# A\n\n{word.title()} at night.\n")
            poll(lambda w=word: w in hits_text(retrieval, TENANT, f"{w} night").lower(), word)
        poll(lambda: watcher.pending() == 0, "the last sync")
        # the store's writes did raise events (so this test exercises the filter), and none
        # of them reached a sync
        assert watcher.dropped_events > 0
        store_dir = settings.store_path.resolve()
        assert not [p for p in watcher.kept_paths if Path(p).is_relative_to(store_dir)]
        assert {Path(p).name for p in watcher.kept_paths} <= {"a.md", "a.md.tmp~"}
    finally:
        watcher.stop()
        store.close()


def test_freshness_of_a_git_work_tree(
    tmp_path: Path, retrieval: Retrieval, start_watcher: StartWatcher
) -> None:
    root = _docs(tmp_path / "wt", {"doc.md": "# Doc\n\nFirst version about otters.\n"})
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "first")
    head = git(root, "rev-parse", "HEAD")
    real = root.resolve().as_posix()

    def current() -> freshness.RootFreshness:
        freshness.clear_git_cache()
        (one,) = freshness.root_freshness(retrieval.store, retrieval.settings, TENANT, Domain.DOCS)
        assert one.root == real
        return one

    run_ingest(retrieval.indexer, [root], domain="docs", tenant=TENANT, progress=False)
    synced = current()
    assert (synced.commit, synced.moved, synced.watched, synced.pending) == (head, False, False, 0)
    assert synced.status == "fresh" and synced.synced_at

    (root / "doc.md").write_text("# Doc\n\nSecond version about seals.\n")  # tracked change
    moved = current()
    assert moved.moved is True and moved.status == "stale" and moved.commit == head
    git(root, "commit", "-qam", "second")
    assert current().moved is True  # HEAD changed
    (root / "untracked.md").write_text("a new file is not in the index either\n")

    watcher = start_watcher(root)  # the catch-up syncs the new commit
    new_head = git(root, "rev-parse", "HEAD")
    now = current()
    assert (now.commit, now.moved, now.watched, now.status) == (new_head, False, True, "fresh")
    (root / "doc.md").write_text("# Doc\n\nThird version about walruses.\n")
    poll(lambda: "walruses" in hits_text(retrieval, TENANT, "walruses"), "the watched edit")
    # the index holds the edited (uncommitted) text: the record says so, and the tree has not
    # moved since that sync
    poll(lambda: current().moved is False and current().status == "fresh", "the re-sync")
    again = current()
    assert again.commit == new_head and again.synced_at > now.synced_at
    watcher.stop()
    assert current().watched is False


def test_freshness_states_of_a_record() -> None:
    """The status rules, on records as stored (a plain folder, never probed by git)."""
    folder = "/nonexistent-root-for-freshness"
    never = freshness.describe(folder, Domain.DOCS, {"pending": 3})
    assert never.status == "never synced" and never.pending == 3
    synced = {"synced_at": "2026-01-01T00:00:00.000+00:00", "git": False}
    gone = freshness.describe(folder, Domain.DOCS, synced)
    assert gone.status == "stale" and gone.error == "the root no longer exists"
    here = Path(__file__).parent.as_posix()
    assert freshness.describe(here, Domain.DOCS, synced).status == "unknown"
    pending = freshness.describe(here, Domain.DOCS, {**synced, "pending": 2})
    assert pending.status == "stale" and pending.pending == 2
    dead = {"pid": 2**22 + 12345, "host": __import__("socket").gethostname()}
    assert not freshness.describe(here, Domain.DOCS, {**synced, "watcher": dead}).watched


def test_a_store_inside_an_ingested_folder_is_never_ingested(
    tmp_path: Path, embedder: DenseEmbedder
) -> None:
    """Its JSON files are code-domain files: a walk that entered the store would index the
    store's own metadata (and change it by doing so)."""
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("def main():\n    return 42\n")
    settings = Settings(store_path=root / "store", reranker_model="none")
    store = EdgeStore(settings.store_path)
    try:
        retrieval = assemble(settings, store, embedder, None)
        for _ in range(2):  # the second run sees the store's files written by the first
            report = run_ingest(
                retrieval.indexer, [root], domain="code", tenant=TENANT, progress=False
            )
            assert not [s for s in report.skipped if "/store/" in s.path]
        real = root.resolve()
        assert sources(retrieval, TENANT, "code") == {f"{real}/src/app.py"}
        assert any(p.suffix == ".json" for p in (root / "store").rglob("*"))
    finally:
        store.close()


def test_a_sync_names_every_skip_with_its_reason(
    tmp_path: Path, start_watcher: StartWatcher, caplog: pytest.LogCaptureFixture
) -> None:
    """watch printed and logged "4 skipped (links: 4)" and never which or why, where ingest
    lists each one: a sync's log names every error and link skip with its reason."""
    root = tmp_path / "notes"
    root.mkdir()
    (root / "a.md").write_text("# A\n\nalpha\n")
    (root / "outside").symlink_to("/etc")
    (root / "broken.md").symlink_to(root / "missing.md")
    with caplog.at_level("INFO", logger="server.ingest.watch"):
        start_watcher(root)  # its catch-up sync
    logged = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("synced ") and "2 skipped" in m for m in logged), logged
    assert (
        f"  skipped {root}/outside: symlink to a folder outside the ingested folders, "
        "not followed: /etc" in logged
    )
    assert any(m.startswith(f"  skipped {root}/broken.md: broken symlink") for m in logged)


def test_a_read_waits_briefly_for_git_then_answers_with_the_last_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Invariant: a freshness read past GIT_CACHE_SECONDS starts one probe and reports it when
    it ends within GIT_WAIT_SECONDS (a small work tree: the answer is current); a slower probe
    (``git status`` of a large work tree takes seconds) does not hold the read up: it answers
    with the last state, whose ``checked_at`` says when it was read, and a later read gets
    the new one. Concurrent reads share one probe; only a root never probed waits for it."""
    root = str(tmp_path)
    released = threading.Event()
    slow = threading.Event()
    probes: list[str] = []

    def git(path: str, *_: object) -> freshness.GitState:
        probes.append(path)
        if slow.is_set():
            assert released.wait(10)
        return freshness.GitState(commit=f"c{len(probes)}", tree="t")

    monkeypatch.setattr(freshness, "git_state", git)
    monkeypatch.setattr(freshness, "GIT_CACHE_SECONDS", 60.0)
    monkeypatch.setattr(freshness, "GIT_WAIT_SECONDS", 2.0)
    monkeypatch.setattr(freshness, "GIT_PROBE_SHARE", 1.0)  # instant probes: no spacing
    freshness.clear_git_cache()
    try:
        first = freshness.probed_git_state(root)
        assert first.state == freshness.GitState("c1", "t")  # never probed: waited for
        assert freshness.probed_git_state(root) == first  # within the window: no probe
        monkeypatch.setattr(freshness, "GIT_CACHE_SECONDS", 0.0)  # every state is now old
        assert freshness.cached_git_state(root) == freshness.GitState("c2", "t")  # fast: current
        slow.set()
        monkeypatch.setattr(freshness, "GIT_WAIT_SECONDS", 0.05)
        started = time.monotonic()
        for _ in range(3):  # a slow probe: the last state, at once; one probe shared
            last = freshness.probed_git_state(root)
            assert last.state == freshness.GitState("c2", "t") and last.checked_at
        assert time.monotonic() - started < 5
        assert len(probes) == 3
        monkeypatch.setattr(freshness, "GIT_CACHE_SECONDS", 60.0)
        released.set()
        poll(lambda: freshness.cached_git_state(root).commit == "c3", "the probed state")
        assert len(probes) == 3
    finally:
        released.set()
        freshness.clear_git_cache()


def test_a_slow_git_probe_is_repeated_less_often(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listing a large work tree's untracked files takes seconds: its probes are spaced so
    they take at most GIT_PROBE_SHARE of the time, however often searches read."""
    probes: list[float] = []

    def git(path: str, *_: object) -> freshness.GitState:
        probes.append(time.monotonic())
        time.sleep(0.05)
        return freshness.GitState(commit="c", tree="t")

    monkeypatch.setattr(freshness, "git_state", git)
    monkeypatch.setattr(freshness, "GIT_CACHE_SECONDS", 0.0)
    monkeypatch.setattr(freshness, "GIT_PROBE_SHARE", 0.01)  # 0.05 s a probe: one per 5 s
    freshness.clear_git_cache()
    try:
        for _ in range(20):
            assert freshness.cached_git_state(str(tmp_path)) == freshness.GitState("c", "t")
        assert len(probes) == 1
    finally:
        freshness.clear_git_cache()


def test_a_probe_older_than_the_sync_does_not_make_it_stale(tmp_path: Path) -> None:
    """Field report: the first search after a watcher's sync said "stale (work tree moved)"
    though the index held the edit: it compared the new record with a git probe cached from
    before the edit. A probe that started before the sync is probed again."""
    root = _docs(tmp_path / "wt", {"doc.md": "# Doc\n\nFirst version.\n"})
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "first")
    real = root.resolve().as_posix()
    freshness.clear_git_cache()
    before = freshness.git_state(real, Domain.DOCS)
    assert before is not None
    record = {**freshness.sync_fields(freshness.now_iso(), before), "watcher": None}
    assert freshness.describe(real, Domain.DOCS, record).status == "fresh"  # probe cached
    (root / "doc.md").write_text("# Doc\n\nSecond version, synced by a watcher.\n")
    time.sleep(0.01)  # the sync starts after the cached probe did
    synced = freshness.sync_fields(freshness.now_iso(), freshness.git_state(real, Domain.DOCS))
    after = freshness.describe(real, Domain.DOCS, {**record, **synced})
    assert (after.moved, after.status) == (False, "fresh")
