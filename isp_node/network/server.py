"""The node's application entity and its listening association server."""

from pynetdicom import AE
from pynetdicom.transport import ThreadedAssociationServer

from isp_node import __version__
from isp_node.config import Config
from isp_node.network import contexts, handlers


def make_ae(config: Config) -> AE:
    """An AE with the node's title, timeouts, PDU bound and accepted contexts."""
    ae = AE(ae_title=config.node.ae_title)
    ae.implementation_version_name = f"ISPNODE_{__version__}"[:16]
    net = config.network
    ae.acse_timeout = net.acse_timeout
    ae.dimse_timeout = net.dimse_timeout
    ae.network_timeout = net.network_timeout
    ae.maximum_pdu_size = net.max_pdu_size
    # Limits are enforced per request in handlers.handle_requested; pynetdicom's
    # own count includes idle sockets that never sent a request, so it is lifted.
    ae.maximum_associations = 10_000
    contexts.add_supported_contexts(ae)
    return ae


def start_server(config: Config, node: handlers.NodeContext) -> ThreadedAssociationServer:
    """Start listening on [node] host:port in background threads."""
    ae = make_ae(config)
    return ae.start_server(
        (config.node.host, config.node.port), block=False,
        evt_handlers=handlers.handlers(node),
    )
