"""The server instructions clients show the model, describing this server as configured."""

from __future__ import annotations

from server.retrieval.reranker import hub_disabled, loadable_without_download
from server.settings import Domain, Settings
from server.tools.common import DATA_NOT_INSTRUCTIONS

SEARCH_TOOLS = {
    Domain.DOCS: "doc_search for documentation and notes",
    Domain.LEGAL: "legal_search for contracts, statutes and licences",
    Domain.CODE: "code_search for source code",
}
WRITE_INSTRUCTIONS = (
    "Writes are enabled: index_path indexes a folder under the server's roots as a job "
    "(job_status and cancel_job follow it), add_text stores a note, remove_source removes "
    "indexed content; all of it only in the caller's own index."
)


def reranked_domains(settings: Settings) -> list[Domain]:
    """The domains whose hits a cross-encoder reorders: none when the reranker is off
    (``reranker_model = none``), else those with ``rerank_depth`` above 0."""
    if not settings.reranker_enabled:
        return []
    return [d for d in Domain if settings.domains[d].rerank_depth > 0]


def ranking_sentence(settings: Settings) -> str:
    """How results are ranked: fused only when no domain reranks, or when the cross-encoder is
    neither on this machine nor downloadable (``HF_HUB_OFFLINE``), so no search will rerank."""
    reranked, model_id = reranked_domains(settings), settings.reranker_model_id
    if not reranked or model_id is None:
        return "Results are ranked by fusing the two (no reranking on this server)."
    names = "all domains" if len(reranked) == len(Domain) else ", ".join(reranked)
    if loadable_without_download(model_id):
        return (
            f"A cross-encoder reranks the results in {names} once its model is loaded "
            "(index_stats says whether it is)."
        )
    if hub_disabled():
        return (
            "Results are ranked by fusing the two: reranking is configured, but its "
            "cross-encoder is not on this machine and downloads are off (each search's "
            "rerank_note says so)."
        )
    # not on this machine: it loads only if the hub can be reached, which is not probed here
    return (
        f"A cross-encoder reranks the results in {names} if its model can be downloaded "
        "(it is not on this machine yet); until then results are fused only, and each "
        "search's rerank_applied and rerank_note say which."
    )


def server_instructions(settings: Settings) -> str:
    """What the tools do on this server: the three domains and their search tools, whether
    (and where) results are reranked, and the write tools only with ``mcp.allow_write``."""
    ranking = ranking_sentence(settings)
    parts = [
        "Hybrid (semantic + keyword) search over the user's own indexed files in three "
        "domains: " + ", ".join(SEARCH_TOOLS[d] for d in Domain) + ".",
        ranking,
        "Hits carry citations; get_chunk widens the context around a hit (or read the hit's "
        "'uri' as a resource); list_sources and index_stats show what is indexed; embed returns "
        "the embedding model's vectors.",
    ]
    if settings.mcp.allow_write:
        parts.append(WRITE_INSTRUCTIONS)
    else:
        parts.append("This server is read-only: indexing is done with the retrieval-mcp CLI.")
    parts.append(DATA_NOT_INSTRUCTIONS)
    return " ".join(parts)
