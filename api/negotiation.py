"""HTTP content negotiation shared by every endpoint that serves several formats."""

from typing import TypeVar

T = TypeVar("T")


def negotiate(accept: str, offers: list[tuple[str, T]]) -> tuple[str, T] | None:
    """The best offer for an Accept header: q-values honoured, */* and type/* accepted, ties
    broken by the client's order, then by the order of `offers` (the first is the default)."""
    if not accept.strip():
        return offers[0]
    ranges = []
    for position, part in enumerate(accept.split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        ranges.append((quality, -position, media.lower()))
    for quality, _, media in sorted(ranges, reverse=True):
        if quality <= 0:
            continue
        for offer in offers:
            kind = offer[0]
            if media in ("*/*", kind) or (media.endswith("/*") and kind.startswith(media[:-1])):
                return offer
    return None
