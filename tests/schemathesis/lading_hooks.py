"""Schemathesis hooks for Lading's contract tests (tests/tests/schemathesis.rs).

- `application/jose` bodies (one compact JWS) are sent as the text they are.
- A proof's `wait` (up to 30 s, by design also for an entry not yet on the ledger) is cut to
  200 ms, so the fuzzer's many cases do not each hold a request for half a minute.
- Path parameters naming a document are, for about half of the generated cases, replaced by a
  document that exists (LADING_ST_REFERENCE), so the fuzzer reaches past 404.
"""

import os
import zlib

import schemathesis

schemathesis.serializer.alias("application/jose", "text/plain")

_REFERENCE = os.environ.get("LADING_ST_REFERENCE")


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    if _REFERENCE and path_parameters and "reference" in path_parameters:
        drawn = str(path_parameters["reference"])
        if zlib.crc32(drawn.encode("utf-8", "surrogatepass")) % 2 == 0:
            path_parameters["reference"] = _REFERENCE
    return path_parameters


@schemathesis.hook
def map_query(ctx, query):
    if query and isinstance(query.get("wait"), int) and query["wait"] > 200:
        query["wait"] = 200
    return query
