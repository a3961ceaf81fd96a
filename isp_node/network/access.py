"""Who may associate with the node and which services each caller may use."""

import socket
from dataclasses import dataclass
from functools import lru_cache

from isp_node.config import SERVICES, Config, Peer

# A-ASSOCIATE-RJ (result, source, reason) triples, PS3.8 9.3.4.
CALLING_AE_NOT_RECOGNISED = (0x01, 0x01, 0x03)
CALLED_AE_NOT_RECOGNISED = (0x01, 0x01, 0x07)
LOCAL_LIMIT_EXCEEDED = (0x02, 0x03, 0x02)


@dataclass(frozen=True)
class Admission:
    """The decision on an association request: the peer, or a rejection and why."""

    peer: Peer | None
    allowed: frozenset[str]
    rejection: tuple[int, int, int] | None = None
    reason: str = ""


@lru_cache(maxsize=256)
def _addresses(host: str) -> frozenset[str]:
    try:
        return frozenset(info[4][0] for info in socket.getaddrinfo(host, None))
    except socket.gaierror:
        return frozenset()


def host_matches(configured: str, address: str) -> bool:
    """True when a peer's configured host name or address is `address`."""
    return configured == address or address in _addresses(configured)


def admit(
    config: Config, calling_ae: str, called_ae: str, address: str,
    open_from_host: int, open_total: int,
) -> Admission:
    """Decide an association request from `calling_ae` at `address`.

    `open_from_host` and `open_total` count the associations already requested
    and not yet ended (idle TCP connections that never sent a request do not
    count: they time out after the ACSE timeout).
    """
    calling_ae, called_ae = calling_ae.strip(), called_ae.strip()
    if called_ae != config.node.ae_title:
        return Admission(None, frozenset(), CALLED_AE_NOT_RECOGNISED,
                         f"called AE title {called_ae!r} is not this node's")
    peer = config.peer(calling_ae)
    if peer is not None and not host_matches(peer.host, address):
        return Admission(None, frozenset(), CALLING_AE_NOT_RECOGNISED,
                         f"{calling_ae} is configured for host {peer.host}, not {address}")
    if peer is None and not config.security.accept_unknown:
        return Admission(None, frozenset(), CALLING_AE_NOT_RECOGNISED,
                         f"calling AE title {calling_ae!r} is not a configured peer")
    if open_from_host >= config.network.max_associations_per_host:
        return Admission(None, frozenset(), LOCAL_LIMIT_EXCEEDED,
                         f"{open_from_host} associations from {address} already open")
    if open_total >= config.network.max_associations:
        return Admission(None, frozenset(), LOCAL_LIMIT_EXCEEDED,
                         f"{open_total} associations already open")
    allowed = peer.allow if peer is not None else frozenset(SERVICES)
    return Admission(peer, allowed)
