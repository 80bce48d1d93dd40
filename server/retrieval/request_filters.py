"""A search's filters as the caller gives them, resolved into exact store conditions.

Callers name filters by what they mean: the domain's metadata fields (chunk_record.FILTER_FIELDS,
one value or a list matching any), ``path_prefix`` (a folder or file, whole path segments),
``path_glob`` (``src/**/*.py``) and, for legal texts, ``section`` (a section and everything
under it). Qdrant matches keyword fields exactly, so prefixes and sections become matches on
the derived fields of filter_fields.py, and a glob becomes the exact list of the tenant's
matching files (browse.matching_sources), read before the search.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.errors import InvalidRequestError, not_unicode_message, unicode_problem
from server.retrieval import browse
from server.retrieval.chunk_record import DOC_TYPE, FILTER_FIELDS, SOURCE
from server.retrieval.filter_fields import unescape_glob
from server.retrieval.store import VectorStore
from server.retrieval.types import FilterValue
from server.settings import Domain, Settings

PATH_PREFIX = "path_prefix"
PATH_GLOB = "path_glob"
SECTION = "section"
_PLACES = {Domain.DOCS: "document", Domain.LEGAL: "document", Domain.CODE: "file"}


@dataclass(frozen=True)
class ResolvedFilters:
    """Store conditions for one search, and why it cannot match anything when it cannot."""

    conditions: dict[str, FilterValue] = field(default_factory=dict)
    nothing_matches: str | None = None
    """Set when a filter provably selects no chunk (a glob no file matches): no search runs."""


def filter_names(domain: Domain) -> list[str]:
    """The filter names a search of ``domain`` accepts."""
    names = [f.name for f in FILTER_FIELDS[domain]] + [PATH_PREFIX, PATH_GLOB]
    return [*names, SECTION] if domain is Domain.LEGAL else names


def filter_value(name: str, value: Any) -> FilterValue:
    """One string, or a non-empty list of strings (matches any), stripped; errors name the
    filter ``name``."""
    if isinstance(value, str):
        if not value.strip():
            raise InvalidRequestError(f"filter {name!r} is empty: give a value or leave it out")
        return value.strip()
    if isinstance(value, Sequence):
        items = [str(v).strip() for v in value if str(v).strip()]
        if not items:
            raise InvalidRequestError(f"filter {name!r} needs at least one non-empty value")
        return items if len(items) > 1 else items[0]
    raise InvalidRequestError(f"filter {name!r} takes a string or a list of strings, not {value!r}")


def _casefold(value: FilterValue) -> FilterValue:
    return [str(v).lower() for v in value] if isinstance(value, list) else str(value).lower()


_POLITY = re.compile(
    r"^(?:the\s+)?(?:(?:state|commonwealth|province|canton|kingdom|republic|federal republic|"
    r"people's republic)\s+of\s+(?:the\s+)?)?",
    re.IGNORECASE,
)


def place_keys(place: str) -> set[str]:
    """What a place is matched by: its name in any case without a leading ``the`` or polity
    word (``the State of New York`` -> ``new york``), and each part of a pair (``England and
    Wales`` -> ``england``, ``wales`` too). Contracts name the governing law's place these
    ways, and a reader filters by the place's own name."""
    name = " ".join(_POLITY.sub("", " ".join(place.split())).split()).casefold()
    return {name, *(part.strip() for part in name.split(" and ") if part.strip())} - {""}


def _as_recorded(
    store: VectorStore,
    collection: str,
    tenant: str,
    name: str,
    value: FilterValue,
    place: bool = False,
) -> FilterValue:
    """``value`` and every spelling of it the tenant's points record for ``name`` in another
    case (``tags=ops`` matches ``Ops``, ``jurisdiction=eu`` matches ``EU``): such fields are
    stored as written or detected; for a ``place``, also every recorded name of that place
    (:func:`place_keys`: ``Delaware`` matches ``State of Delaware``). One facet read of the
    field's payload index."""
    wanted = value if isinstance(value, list) else [value]
    folded = {str(v).casefold() for v in wanted}
    keys = set().union(*(place_keys(str(v)) for v in wanted)) if place else set()
    recorded = [
        v
        for v in store.values(collection, tenant, name)
        if v.casefold() in folded or (place and place_keys(v) & keys)
    ]
    spellings = list(dict.fromkeys([*map(str, wanted), *recorded]))
    return spellings if len(spellings) > 1 else spellings[0]


def check_filters(domain: Domain, filters: Mapping[str, Any]) -> dict[str, Any]:
    """The given filters (None values left out), checked without the store: known names,
    valid Unicode, one value where one is taken, no empty value, a value of the field's closed
    set where it has one (``FilterField.choices``, any case). Raises InvalidRequestError."""
    given = {key: value for key, value in filters.items() if value is not None}
    unknown = sorted(set(given) - set(filter_names(domain)))
    if unknown:
        expected = ", ".join(filter_names(domain))
        raise InvalidRequestError(
            f"unknown filter {unknown[0]!r} for {domain.value}; expected one of: {expected}"
        )
    for name, value in given.items():
        for text in value if isinstance(value, list) else [value]:
            problem = unicode_problem(text) if isinstance(text, str) else None
            if problem is not None:
                raise InvalidRequestError(not_unicode_message(f"filter {name!r}", problem))
    for name in (PATH_PREFIX, PATH_GLOB, SECTION):
        if name in given and not isinstance(given[name], str):
            raise InvalidRequestError(
                f"filter {name!r} takes one value (a string), not {given[name]!r}"
            )
    for name, value in given.items():
        filter_value(name, value)  # an empty value is refused here too
    for spec in FILTER_FIELDS[domain]:
        value = given.get(spec.name)
        if spec.choices and value is not None:
            for text in value if isinstance(value, list) else [value]:
                if str(text).strip().casefold() not in spec.choices:
                    expected = ", ".join(spec.choices)
                    raise InvalidRequestError(
                        f"filter {spec.name!r} has no value {text!r}; expected one of: {expected}"
                    )
    return given


def resolve_filters(
    store: VectorStore,
    settings: Settings,
    tenant: str,
    domain: Domain,
    filters: Mapping[str, Any],
) -> ResolvedFilters:
    """Exact store conditions for ``filters`` (None values are ignored).

    Raises InvalidRequestError for an unknown filter name, an empty value, more than one value
    for ``path_prefix``, ``path_glob`` or ``section``, a malformed glob, or a glob matching
    more than ``mcp.max_glob_sources`` files.
    """
    given = check_filters(domain, filters)
    conditions: dict[str, FilterValue] = {}
    collection = settings.domains[domain].collection
    for spec in FILTER_FIELDS[domain]:
        if spec.name in given:
            value = filter_value(spec.name, given[spec.name])
            conditions[spec.name] = (
                _casefold(value)
                if spec.casefold
                else _as_recorded(store, collection, tenant, spec.name, value, spec.place)
            )
    prefix = given.get(PATH_PREFIX)
    if prefix is not None:
        conditions.update(browse.path_prefix_filter(str(prefix)))
    if SECTION in given:
        conditions.update(browse.section_filter(str(given[SECTION])))
    glob = given.get(PATH_GLOB)
    if glob is None:
        return ResolvedFilters(conditions)
    if not str(glob).strip():
        raise InvalidRequestError(f"filter {PATH_GLOB!r} is empty: give a value or leave it out")
    sources = browse.matching_sources(
        store,
        settings,
        tenant,
        domain,
        glob=str(glob).strip(),
        prefix=None if prefix is None else str(prefix),
        cap=settings.mcp.max_glob_sources,
    )
    if not sources:
        place = _PLACES[domain]
        note = f"no indexed {place} matches path_glob {glob!r}"
        if unescape_glob(str(glob)) != str(glob):  # a Windows path reads as escapes here
            note += (
                r" (in path_glob a backslash before * ? [ ] matches that character itself; "
                "separate folders with /)"
            )
        return ResolvedFilters(conditions, note)
    conditions[SOURCE] = sources if len(sources) > 1 else sources[0]
    return ResolvedFilters(conditions)


_VALUES_HINT = {
    (Domain.DOCS, DOC_TYPE): " (it is the file type: 'markdown', 'rst', 'html', 'pdf' or 'text')",
}
"""What a value of a filter looks like, where a user is likely to guess it wrong ('md')."""


def why_nothing_matches(
    store: VectorStore,
    settings: Settings,
    tenant: str,
    domain: Domain,
    collection: str,
    given: Mapping[str, Any],
    conditions: Mapping[str, FilterValue],
) -> str | None:
    """For a search that found nothing: a note naming the filter in ``given`` that matches no
    indexed chunk of ``tenant`` (the first, in the order given), or saying the filters match
    none together; None when no filter was given or the chunks they select exist (the search
    came back empty for another reason, e.g. a BM25 search whose terms are in none of them).

    Costs one count, and one per filter when the filters select nothing: only searches that
    found nothing pay it. A ``path_glob`` that matches no file is said before any search."""
    if not given or store.count(collection, tenant, dict(conditions)) > 0:
        return None
    for name, value in given.items():
        if name == PATH_GLOB:
            continue  # it resolved to files, or the search would not have run
        alone = resolve_filters(store, settings, tenant, domain, {name: value}).conditions
        if store.count(collection, tenant, alone) > 0:
            continue
        if name == PATH_PREFIX:
            return f"no indexed file is under path_prefix {value!r}"
        shown = repr(value) if isinstance(value, str) else "any of " + ", ".join(map(repr, value))
        return f"no indexed passage has {name} {shown}{_VALUES_HINT.get((domain, name), '')}"
    return "no indexed passage matches all the filters together: " + ", ".join(given)
