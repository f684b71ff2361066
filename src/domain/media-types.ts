export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MediaType.OciManifest,
  MediaType.OciIndex,
  MediaType.DockerManifest,
  MediaType.DockerManifestList,
];

export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MediaType.OciIndex || mediaType === MediaType.DockerManifestList;
}

/**
 * Layers that clients fetch from elsewhere (Windows base layers and OCI non-distributable layers):
 * a registry is not expected to hold them, so a manifest may reference them without the blob.
 */
export function isForeignLayer(mediaType: string): boolean {
  return (
    mediaType === 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip' ||
    mediaType.startsWith('application/vnd.oci.image.layer.nondistributable.')
  );
}
