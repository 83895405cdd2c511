"""Article pages: fetch each new article's page, extract its body, retag on the full text.

Where it sits in DESIGN.md's data flow::

    scheduler tick ──> due article pages (per-host polite, same guard) ──> fetch page
      ──> extract body (trafilatura chain, in the prepare pool) ──> store body ──> retag

``queue`` (the ``article_page`` table: due pages, attempts, backoff, leases), ``fetch`` (the
feed fetcher's guarded client, asking for HTML), ``extract`` (bytes to text and metadata, no
I/O), ``prepare`` (extraction, sketch and tagging in a worker process, CPU-bounded), ``store``
(the body, the page's facts, matches on the full text, stories), ``run`` (the orchestrator),
``health`` (failures per host).
"""
