"""Nothing crosses a tenant line (R46): text from one side is cleaned before the other side can read it.

Gateway health and error text names the backend it dialled (an IP, IP:port, or a Service's DNS name that
carries the provider's namespace); Endpoint conditions quote that text to the consumer, who must learn that
the backend is unreachable, never where it lives.
"""

from __future__ import annotations

import re

BACKEND_ADDRESS = "<backend>"

_IPV4 = r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])"
_IPV6 = r"\[?(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])(?:\](?::\d{1,5})?)?"
_HOSTNAME = r"(?<![\w.-])(?:[A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*\.?(?::\d{1,5})?(?![\w.-])"
_ADDRESS = re.compile("|".join(f"(?:{pattern})" for pattern in (_IPV4, _IPV6, _HOSTNAME)))


def without_addresses(text: str) -> str:
    """`text` with every IP address, IP:port and dotted host name replaced by a placeholder."""
    return _ADDRESS.sub(BACKEND_ADDRESS, text)
