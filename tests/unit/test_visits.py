"""Binding rules: each case of the one rule in edge/visits/book.py, with real SQLite."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from edge.visits import VisitBook, VisitError

T = 1_795_000_000.0  # an instant in 2026, seconds since the epoch


@pytest.fixture
def book(tmp_path: Path) -> VisitBook:
    return VisitBook(tmp_path / "visits.sqlite", {"eye", "bp"})


def _bound(book: VisitBook, station: str, at: float, uncertainty: float = 1.0) -> str | None:
    binding = book.bind(station, at - uncertainty, at + uncertainty, now=at)
    return binding.visit.visit_id if binding.visit else None


def test_a_reading_binds_to_the_visit_open_at_its_station_at_measurement_time(
    book: VisitBook,
) -> None:
    book.start("eye", "V-0001", at=T)
    assert _bound(book, "eye", T + 60) == "V-0001"
    book.stop("eye", at=T + 300)
    book.start("eye", "V-0002", at=T + 400)
    assert _bound(book, "eye", T + 120) == "V-0001"  # arrives late, measured during V-0001
    assert _bound(book, "eye", T + 500) == "V-0002"


def test_a_record_from_device_memory_before_the_visit_never_binds_to_it(book: VisitBook) -> None:
    book.start("bp", "V-0100", at=T)
    binding = book.bind("bp", T - 3600 - 1, T - 3600 + 1, now=T + 5)  # yesterday's history
    assert binding.visit is None
    assert "no visit open at station 'bp'" in binding.reason


def test_no_open_visit_means_no_subject_with_a_reason(book: VisitBook) -> None:
    binding = book.bind("eye", T - 1, T + 1)
    assert binding.visit is None
    assert binding.reason == "no visit open at station 'eye' at the measurement time"
    assert book.bind(None, T, T).reason == "device belongs to no station"


def test_overlapping_visits_at_two_stations_never_cross_bind(book: VisitBook) -> None:
    book.start("eye", "V-EYE1", at=T)
    book.start("bp", "V-BP01", at=T + 10)
    assert _bound(book, "eye", T + 20) == "V-EYE1"
    assert _bound(book, "bp", T + 20) == "V-BP01"
    book.stop("eye", at=T + 30)
    assert _bound(book, "eye", T + 40) is None  # bp's open visit is not a fallback
    assert _bound(book, "bp", T + 40) == "V-BP01"


def test_a_measurement_in_progress_at_close_keeps_its_patient(book: VisitBook) -> None:
    """Documented outcome: the measurement time decides, not the arrival time."""
    book.start("bp", "V-0200", at=T)
    book.stop("bp", at=T + 100)  # the nurse closes while the cuff still deflates
    assert _bound(book, "bp", T + 95) == "V-0200"  # measured before the close: bound
    assert _bound(book, "bp", T + 105) is None  # measured after it: nobody


def test_a_measurement_straddling_a_hand_over_is_not_guessed(book: VisitBook) -> None:
    book.start("eye", "V-AAAA", at=T)
    book.start("eye", "V-BBBB", at=T + 10)  # supersedes V-AAAA at T + 10
    binding = book.bind("eye", T + 9, T + 11)  # clock uncertainty spans both
    assert binding.visit is None
    assert binding.reason == "ambiguous: the measurement time spans 2 visits (a hand-over)"
    assert _bound(book, "eye", T + 5) == "V-AAAA"
    assert _bound(book, "eye", T + 15) == "V-BBBB"


def test_device_clock_skew_is_corrected_before_binding(book: VisitBook) -> None:
    """A device clock 90 s fast stamps 10:01:30 a reading taken at 10:00:00."""
    book.start("eye", "V-SKEW", at=T)
    book.stop("eye", at=T + 60)
    device_stamp, offset = T + 30 + 90, 90.0  # measured at T + 30 by the gateway's clock
    assert _bound(book, "eye", device_stamp) is None  # uncorrected: after the close
    assert _bound(book, "eye", device_stamp - offset) == "V-SKEW"


def test_one_visit_per_station_a_new_one_supersedes_the_old(book: VisitBook) -> None:
    book.start("eye", "V-0001", at=T)
    (old,) = book.start("eye", "V-0002", at=T + 50)
    assert (old.visit_id, old.closed_at, old.closed_by) == ("V-0001", T + 50, "superseded")
    assert [v.visit_id for v in book.open_visits()] == ["V-0002"]


def test_idle_visits_close_at_their_last_activity_plus_the_idle_time(book: VisitBook) -> None:
    book.start("eye", "V-IDLE", at=T)
    assert _bound(book, "eye", T + 100) == "V-IDLE"  # activity at T + 100
    assert book.close_idle(600, now=T + 650) == []
    (closed,) = book.close_idle(600, now=T + 2000)
    assert (closed.closed_at, closed.closed_by) == (T + 700, "idle")
    assert _bound(book, "eye", T + 800) is None
    book.start("eye", "V-EYE2", at=T + 3000)
    book.start("bp", "V-BP02", at=T + 3000)
    (closed,) = book.close_idle(60, now=T + 3100, station="bp")  # per station
    assert closed.visit_id == "V-BP02"
    assert [v.visit_id for v in book.open_visits()] == ["V-EYE2"]


@pytest.mark.parametrize(
    ("visit_id", "message"),
    [
        ("1 85 05 78 006 084 36", "social-security number"),
        ("185057800608436", "social-security number"),
        ("2850578006084", "social-security number"),
        ("Jean Dupont", "not a pseudonym"),
        ("ab", "not a pseudonym"),
    ],
)
def test_identifying_or_malformed_visit_ids_are_refused(
    book: VisitBook, visit_id: str, message: str
) -> None:
    with pytest.raises(VisitError, match=message):
        book.start("eye", visit_id, at=T)
    assert book.open_visits() == []


def test_unknown_station_and_nothing_to_stop_are_clear_errors(book: VisitBook) -> None:
    with pytest.raises(VisitError, match=r"unknown station 'lab' \(stations: bp, eye\)"):
        book.start("lab", "V-0001")
    with pytest.raises(VisitError, match="no visit is open at station 'eye'"):
        book.stop("eye")


def test_concurrent_openings_keep_at_most_one_open_visit_per_station(tmp_path: Path) -> None:
    """The tablet's MQTT command and an operator's CLI race on the same station."""
    path = tmp_path / "visits.sqlite"
    VisitBook(path, {"eye"}).close()
    errors: list[BaseException] = []

    def opener(n: int) -> None:
        own = VisitBook(path, {"eye"})  # one connection per actor, as in production
        try:
            for i in range(20):
                own.start("eye", f"V-{n}-{i:03d}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=opener, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    check = VisitBook(path, {"eye"})
    assert len(check.open_visits()) == 1
    history = check.history("eye", limit=100)
    assert len(history) == 80
    assert sum(v.closed_at is None for v in history) == 1
