"""Served models: any server speaking the OpenAI chat-completions API (vLLM first).

``%lm connect URL`` (``lmwidgets.connect``) makes an :class:`ServedEngine`: a model that runs on
a server (vLLM, SGLang, llama.cpp's server, ``transformers serve``, hosted APIs), for models
larger than the kernel's machine. Every row of a batch is one streamed request; rows run
concurrently (bounded), so the server batches them. Stop closes the open streams (the server
aborts those requests) and keeps the text so far.

The API key is read from an environment variable at connect time and kept in memory only: it is
never written into a record, an output, an error message, a summary or a log.
"""

from lmwidgets.engines.served.client import api_root, public_url, read_api_key
from lmwidgets.engines.served.engine import ServedEngine, load

__all__ = ["ServedEngine", "api_root", "load", "public_url", "read_api_key"]
