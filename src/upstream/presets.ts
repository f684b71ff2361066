/** What Cistern knows about each kind of upstream registry. */
export interface UpstreamPreset {
  /** Hosts that name this registry in image references and containerd's `ns` parameter. */
  aliases: string[];
  /** Where its API actually lives, when that differs from the name people use. */
  apiHost?: string;
  /** Single-component names live under `library/` (Docker Hub's official images). */
  officialNamespace?: string;
  /** Counts every manifest GET as a pull against a quota (so a platform manifest is a pull too). */
  countsPulls: boolean;
}

export const PRESETS: Record<string, UpstreamPreset> = {
  'docker-hub': {
    aliases: ['docker.io', 'registry-1.docker.io', 'index.docker.io', 'registry.hub.docker.com'],
    apiHost: 'registry-1.docker.io',
    officialNamespace: 'library',
    countsPulls: true,
  },
  'github-container-registry': { aliases: ['ghcr.io'], countsPulls: false },
  quay: { aliases: ['quay.io'], countsPulls: false },
  'gitlab-container-registry': { aliases: ['registry.gitlab.com'], countsPulls: false },
  k8s: { aliases: ['registry.k8s.io', 'k8s.gcr.io'], countsPulls: false },
  'ecr-public': { aliases: ['public.ecr.aws'], countsPulls: false },
  chainguard: { aliases: ['cgr.dev'], countsPulls: false },
  ecr: { aliases: [], countsPulls: false },
  'azure-container-registry': { aliases: [], countsPulls: false },
  oci: { aliases: [], countsPulls: false },
};

/** The kind a registry host implies, for rules that do not say. */
export function kindOfHost(host: string): string {
  for (const [kind, preset] of Object.entries(PRESETS)) {
    if (preset.aliases.includes(host)) return kind;
  }
  if (/\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com$/.test(host)) return 'ecr';
  if (host.endsWith('.azurecr.io')) return 'azure-container-registry';
  return 'oci';
}

/** `registry-1.docker.io` or `http://127.0.0.1:5001` as a base URL; a bare host means HTTPS. */
export function upstreamUrl(registry: string, kind: string): string {
  const withScheme = /^https?:\/\//.test(registry) ? registry : `https://${registry}`;
  const url = new URL(withScheme);
  const apiHost = PRESETS[kind]?.apiHost;
  if (apiHost && PRESETS[kind]!.aliases.includes(url.host)) url.host = apiHost;
  return url.origin + url.pathname.replace(/\/+$/, '');
}
