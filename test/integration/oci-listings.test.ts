import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCistern, type TestCistern } from '../helpers/cistern.ts';
import { blob, errorCode, imageManifest, pushBlob, putManifest } from '../helpers/oci.ts';

describe('OCI listings: tags and catalog', () => {
  let cistern: TestCistern;
  let base: string;
  const tags = ['1.0', '1.1', '2.0', 'latest', 'v-9', 'Z_up'];
  before(async () => {
    cistern = await startCistern();
    base = cistern.url;
    const config = blob('listing/config');
    for (const repo of ['list/alpha', 'list/beta', 'list/gamma', 'list/delta']) {
      await pushBlob(base, repo, config);
      await putManifest(base, repo, 'latest', imageManifest(config, []));
    }
    for (const tag of tags) await putManifest(base, 'list/alpha', tag, imageManifest(config, [], { annotations: { tag } }));
  });
  after(() => cistern.stop());

  it('lists every tag in lexical order', async () => {
    const res = await fetch(`${base}/v2/list/alpha/tags/list`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('link'), null);
    assert.deepEqual(await res.json(), { name: 'list/alpha', tags: [...tags].sort() });
  });

  it('pages tags with n, last and a Link header until the end', async () => {
    const seen: string[] = [];
    let next: string | undefined = '/v2/list/alpha/tags/list?n=4';
    let pages = 0;
    while (next) {
      const res: Response = await fetch(`${base}${next}`);
      const body = (await res.json()) as { tags: string[] };
      seen.push(...body.tags);
      pages++;
      next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1];
    }
    assert.equal(pages, 2);
    assert.deepEqual(seen, [...tags].sort());
    const after = await fetch(`${base}/v2/list/alpha/tags/list?n=2&last=2.0`);
    assert.deepEqual(((await after.json()) as { tags: string[] }).tags, ['Z_up', 'latest']);
  });

  it('answers NAME_UNKNOWN for an unknown repository and PAGINATION_NUMBER_INVALID for a bad n', async () => {
    const unknown = await fetch(`${base}/v2/list/nowhere/tags/list`);
    assert.equal(unknown.status, 404);
    assert.equal(await errorCode(unknown), 'NAME_UNKNOWN');
    for (const n of ['-1', 'abc', '1e3', '99999999999']) {
      const res = await fetch(`${base}/v2/list/alpha/tags/list?n=${n}`);
      assert.equal(res.status, 400, n);
      assert.equal(await errorCode(res), 'PAGINATION_NUMBER_INVALID', n);
    }
  });

  it('pages the catalog', async () => {
    const first = await fetch(`${base}/v2/_catalog?n=2`);
    assert.deepEqual(await first.json(), { repositories: ['list/alpha', 'list/beta'] });
    assert.equal(first.headers.get('link'), '</v2/_catalog?n=2&last=list%2Fbeta>; rel="next"');
    const second = await fetch(`${base}/v2/_catalog?n=2&last=list%2Fbeta`);
    assert.deepEqual(await second.json(), { repositories: ['list/delta', 'list/gamma'] });
    assert.equal(second.headers.get('link'), null);
    const all = await fetch(`${base}/v2/_catalog`);
    assert.deepEqual(await all.json(), { repositories: ['list/alpha', 'list/beta', 'list/delta', 'list/gamma'] });
  });
});
