/** A parsed `WWW-Authenticate` challenge (RFC 7235), as registries send them. */
export interface Challenge {
  scheme: 'bearer' | 'basic';
  params: Record<string, string>;
}

/** Parses the first Bearer or Basic challenge in a header; undefined when there is none. */
export function parseChallenge(header: string | string[] | undefined): Challenge | undefined {
  const values = Array.isArray(header) ? header : header ? [header] : [];
  for (const value of values) {
    const match = /^\s*(Bearer|Basic)\b\s*(.*)$/i.exec(value);
    if (!match) continue;
    const params: Record<string, string> = {};
    const pattern = /([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
    for (let m = pattern.exec(match[2]!); m; m = pattern.exec(match[2]!)) {
      params[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!;
    }
    return { scheme: match[1]!.toLowerCase() as Challenge['scheme'], params };
  }
  return undefined;
}
