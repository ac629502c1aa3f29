"""HTTP content negotiation shared by every endpoint that serves several formats."""

from typing import Any

from .problems import Problem


def negotiate(accept: str, offers: list[tuple[str, Any]], what: str) -> tuple[str, Any]:
    """The offer the Accept header prefers (RFC 9110: the most specific range gives an offer its q)."""
    if not accept.strip():
        return offers[0]
    ranges = []
    for position, part in enumerate(accept.split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((media.lower(), quality, position))
    def specificity(media: str, offered: str) -> int:  # -1: no match
        if media == offered:
            return 2
        if media.endswith("/*") and offered.startswith(media[:-1]):
            return 1
        return 0 if media == "*/*" else -1

    best = None
    for index, offer in enumerate(offers):
        matching = [(rank, quality, position) for media, quality, position in ranges
                    if (rank := specificity(media, offer[0])) >= 0]
        if not matching:
            continue
        _, quality, position = max(matching, key=lambda m: (m[0], -m[2]))
        if quality > 0 and (best is None or (quality, -position, -index) > best[0]):
            best = ((quality, -position, -index), offer)
    if best is None:
        raise Problem(406, "Not acceptable", f"no {what} format matches Accept: {accept}; this endpoint serves "
                      + ", ".join(media for media, _ in offers), parameter="Accept", value=accept)
    return best[1]
