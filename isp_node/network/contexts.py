"""Presentation contexts: what the node accepts, per caller, and what it proposes."""

from pathlib import Path

import pydicom
from pydicom import uid
from pynetdicom import AE, AllStoragePresentationContexts, build_context
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

# The acceptor picks the first of these that a proposed context offers, so the
# order is a preference: uncompressed first (what every C-GET caller can take
# back on the same context), then lossless, and lossy syntaxes only when the
# sender offers nothing else. Senders that propose one context per transfer
# syntax (dcmtk's default) keep their compressed data as sent. Compressed
# objects are stored as received and decoded by the pylibjpeg plugins on reading.
LOSSLESS_COMPRESSED = [
    uid.JPEGLSLossless,
    uid.JPEG2000Lossless,
    uid.JPEGLosslessSV1,
    uid.JPEGLossless,
    uid.RLELossless,
]
UNCOMPRESSED = [
    uid.ExplicitVRLittleEndian,
    uid.ImplicitVRLittleEndian,
    uid.DeflatedExplicitVRLittleEndian,
]
LOSSY_COMPRESSED = [
    uid.JPEGBaseline8Bit,
    uid.JPEGExtended12Bit,
    uid.JPEGLSNearLossless,
    uid.JPEG2000,
]
SERVICE_MODELS = {
    "find": {PatientRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelFind},
    "move": {PatientRootQueryRetrieveInformationModelMove, StudyRootQueryRetrieveInformationModelMove},
    "get": {PatientRootQueryRetrieveInformationModelGet, StudyRootQueryRetrieveInformationModelGet},
}


def add_supported_contexts(ae: AE) -> None:
    """Make `ae` accept verification, query/retrieve and every storage SOP class.

    Storage contexts allow both roles, so a C-GET caller can receive the
    sub-operations on its own association.
    """
    ae.add_supported_context(Verification)
    for models in SERVICE_MODELS.values():
        for model in sorted(models):
            ae.add_supported_context(model)
    for storage in AllStoragePresentationContexts:
        ae.add_supported_context(
            storage.abstract_syntax, UNCOMPRESSED + LOSSLESS_COMPRESSED + LOSSY_COMPRESSED,
            scu_role=True, scp_role=True,
        )


def service_of(abstract_syntax: str) -> str:
    """The access-control service a context belongs to: echo, find, move, get, store."""
    if abstract_syntax == Verification:
        return "echo"
    for service, models in SERVICE_MODELS.items():
        if abstract_syntax in models:
            return service
    return "store"


def allowed_contexts(
    supported: list[PresentationContext], allowed: frozenset[str]
) -> list[PresentationContext]:
    """The contexts a caller may negotiate given its `allow` list.

    Storage contexts stay when the caller may store or get (C-GET needs them to
    receive); the C-STORE handler refuses stores from a get-only caller.
    """
    def keep(cx: PresentationContext) -> bool:
        service = service_of(cx.abstract_syntax)
        if service == "echo":
            return True
        if service == "store":
            return bool({"store", "get"} & allowed)
        return service in allowed

    return [cx for cx in supported if keep(cx)]


def move_contexts(paths: list[Path]) -> list[PresentationContext]:
    """Contexts to propose to a C-MOVE destination for these stored files."""
    wanted: dict[str, set[str]] = {}
    for path in paths:
        meta = pydicom.filereader.read_file_meta_info(path)
        syntaxes = wanted.setdefault(str(meta.MediaStorageSOPClassUID), set())
        syntaxes.add(str(meta.TransferSyntaxUID))
    contexts = []
    for sop_class, syntaxes in sorted(wanted.items()):
        ordered = sorted(syntaxes) + [uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian]
        contexts.append(build_context(sop_class, list(dict.fromkeys(ordered))))
    return contexts[:128]
