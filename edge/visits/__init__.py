"""Stations, pseudonymous visits and the binding of readings to them."""

from edge.visits.book import Binding, Visit, VisitBook, VisitError, check_visit_id

__all__ = ["Binding", "Visit", "VisitBook", "VisitError", "check_visit_id"]
