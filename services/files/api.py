"""FilesService servicer: translates protobuf messages to the files domain and back.

Service-to-service use: the simulation service reads a model's workbook with
``Download`` on behalf of the user who asked, forwarding that user's credentials
(``authorization`` or ``x-api-key`` metadata) over its own mTLS channel, so tenant
scoping and shares apply exactly as for the user. The shared runtime admits a service
peer carrying user credentials only when the RPC's access rule names it in ``peers``,
so Download's rule needs ``peers: ["simulation"]``. That rule would also admit the
service *without* user credentials; this servicer refuses such calls
(PERMISSION_DENIED): a file is only ever read for a user of its tenant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from alea.files.v1 import files_pb2, files_pb2_grpc
from google.api import httpbody_pb2
from google.protobuf import empty_pb2

from services.files.content import OPAQUE
from services.files.domain import FileInfo, Files, NewFile, StorageUsage
from services.runtime.context import ServicerContext, current_principal, forwarded_credentials
from services.runtime.convert import timestamp
from services.runtime.errors import InvalidArgument, NotFound, PermissionDenied
from services.runtime.listing import ListRequest

__all__ = ["FilesServicer"]

DOWNLOAD_PIECE = 1024 * 1024  # the contract's largest Download message


def to_file(info: FileInfo) -> files_pb2.File:
    """The API form of a stored file."""
    return files_pb2.File(
        id=info.id,
        tenant_id=info.tenant_id,
        owner_id=info.owner_id,
        file_name=info.name,
        content_type=info.content_type,
        size_bytes=info.size,
        sha256=info.sha256,
        shared_with=info.shared_with,
        create_time=timestamp(info.create_time),
        update_time=timestamp(info.update_time),
    )


def to_usage(usage: StorageUsage) -> files_pb2.StorageUsage:
    """The API form of a tenant's storage usage."""
    return files_pb2.StorageUsage(
        tenant_id=usage.tenant_id,
        used_bytes=usage.bytes_used,
        quota_bytes=usage.limit_bytes,
        file_count=usage.file_count,
    )


async def _one(piece: bytes) -> AsyncIterator[bytes]:
    yield piece


# Where the upload's domain fields live in each request message.
_UPLOAD_FIELDS = {
    "size_bytes": "metadata.size_bytes",
    "sha256": "metadata.sha256",
    "content_type": "metadata.content_type",
}
_UPLOAD_BODY_FIELDS = {"size_bytes": "body.data", "content_type": "body.content_type"}


def _in_request(error: InvalidArgument, fields: dict[str, str]) -> InvalidArgument:
    """The same violations with domain field names replaced by request field paths."""
    return InvalidArgument.of([(fields.get(f, f), reason) for f, reason in error.violations])


class FilesServicer(files_pb2_grpc.FilesServiceServicer):
    """gRPC (and, through Envoy's transcoder, REST) face of :class:`Files`."""

    def __init__(self, files: Files) -> None:
        self._files = files

    async def Upload(
        self, request_iterator: AsyncIterator[files_pb2.UploadRequest], context: ServicerContext
    ) -> files_pb2.File:
        messages = aiter(request_iterator)
        first = await anext(messages, None)
        if first is None or not first.HasField("metadata"):
            raise InvalidArgument("metadata", "the first message of an upload must be metadata")
        meta = first.metadata

        async def chunks() -> AsyncIterator[bytes]:
            async for message in messages:
                if message.HasField("metadata"):
                    raise InvalidArgument("metadata", "only the first message may be metadata")
                yield message.chunk

        new = NewFile(
            meta.file_name,
            meta.content_type or OPAQUE,
            meta.size_bytes,
            meta.sha256,
            meta.request_id,
        )
        try:
            return to_file(await self._files.upload(current_principal(), new, chunks()))
        except InvalidArgument as exc:
            raise _in_request(exc, _UPLOAD_FIELDS) from None

    async def UploadBody(
        self, request: files_pb2.UploadBodyRequest, context: ServicerContext
    ) -> files_pb2.File:
        body = request.body
        new = NewFile(
            request.file_name,
            body.content_type or OPAQUE,
            len(body.data),
            request_id=request.request_id,
        )
        try:
            return to_file(await self._files.upload(current_principal(), new, _one(body.data)))
        except InvalidArgument as exc:
            raise _in_request(exc, _UPLOAD_BODY_FIELDS) from None

    async def Download(
        self, request: files_pb2.DownloadRequest, context: ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        caller = current_principal()
        if caller.is_service:
            raise PermissionDenied("Download needs the credentials of a user of the file's tenant")
        info, stream = await self._files.download(
            caller, request.file_id, request.offset, request.length
        )
        content_type = info.content_type
        async for piece in stream:
            for start in range(0, len(piece), DOWNLOAD_PIECE):
                yield httpbody_pb2.HttpBody(
                    content_type=content_type, data=piece[start : start + DOWNLOAD_PIECE]
                )
                content_type = ""
        if content_type:  # nothing sent (an empty file or range): still say the type
            yield httpbody_pb2.HttpBody(content_type=content_type)

    async def GetFile(
        self, request: files_pb2.GetFileRequest, context: ServicerContext
    ) -> files_pb2.File:
        return to_file(await self._files.get(current_principal(), request.file_id))

    async def ListFiles(
        self, request: files_pb2.ListFilesRequest, context: ServicerContext
    ) -> files_pb2.ListFilesResponse:
        query = ListRequest(request.page_size, request.page_token, request.filter, request.order_by)
        page = await self._files.list(current_principal(), query)
        return files_pb2.ListFilesResponse(
            files=[to_file(info) for info in page.items], next_page_token=page.next_page_token
        )

    async def DeleteFile(
        self, request: files_pb2.DeleteFileRequest, context: ServicerContext
    ) -> empty_pb2.Empty:
        await self._files.delete(current_principal(), request.file_id)
        return empty_pb2.Empty()

    async def ShareFile(
        self, request: files_pb2.ShareFileRequest, context: ServicerContext
    ) -> files_pb2.File:
        caller, credentials = current_principal(), forwarded_credentials(context)
        shared = await self._files.share(caller, request.file_id, request.user_id, credentials)
        return to_file(shared)

    async def UnshareFile(
        self, request: files_pb2.UnshareFileRequest, context: ServicerContext
    ) -> files_pb2.File:
        caller = current_principal()
        return to_file(await self._files.unshare(caller, request.file_id, request.user_id))

    async def GetStorageUsage(
        self, request: files_pb2.GetStorageUsageRequest, context: ServicerContext
    ) -> files_pb2.StorageUsage:
        caller = current_principal()
        tenant = request.tenant_id or caller.tenant_id
        if caller.is_service and not tenant:
            raise InvalidArgument("tenant_id", "a service must name the tenant")
        if not caller.is_service and tenant != caller.tenant_id:
            raise NotFound("tenant", tenant)
        return to_usage(await self._files.usage(tenant))
