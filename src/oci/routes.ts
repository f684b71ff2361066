import { RegistryError } from '../domain/errors.ts';

export type Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'referrers'; name: string; digest: string };

// Names may contain "/", so each pattern anchors on the fixed tail of the path.
const PATTERNS: [RegExp, (m: RegExpExecArray) => Route][] = [
  [/^\/v2\/?$/, () => ({ kind: 'base' })],
  [/^\/v2\/_catalog$/, () => ({ kind: 'catalog' })],
  [/^\/v2\/(.+)\/tags\/list$/, (m) => ({ kind: 'tags', name: m[1]! })],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, (m) => ({ kind: 'manifest', name: m[1]!, reference: m[2]! })],
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploads', name: m[1]! })],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: m[1]!, id: m[2]! })],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: m[1]!, digest: m[2]! })],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, (m) => ({ kind: 'referrers', name: m[1]!, digest: m[2]! })],
];

/**
 * Which OCI endpoint a raw (undecoded, unnormalised) path names; throws ROUTE_UNKNOWN for anything
 * else. Matching happens before decoding, so an escaped "/" stays inside its segment and is then
 * refused by the name, digest or id grammar rather than redirecting the request elsewhere.
 */
export function matchRoute(rawPath: string): Route {
  for (const [pattern, build] of PATTERNS) {
    const match = pattern.exec(rawPath);
    if (match) return decodeParts(build(match));
  }
  throw new RegistryError('ROUTE_UNKNOWN', 'no such endpoint in the OCI distribution API');
}

function decodeParts(route: Route): Route {
  const decoded: Record<string, string> = {};
  for (const [key, value] of Object.entries(route)) {
    try {
      decoded[key] = key === 'kind' ? value : decodeURIComponent(value);
    } catch {
      throw new RegistryError('ROUTE_UNKNOWN', 'malformed percent-encoding in path');
    }
  }
  return decoded as unknown as Route;
}
