// A client team's first program with the SDK @hey-api/openapi-ts makes from the served spec
// (generated into ./hey-api beside this file with its own fetch client, compiled with
// tsc --strict): creates, lists with a filter, retrieves, patches and deletes a usage, creates
// a usage specification, registers and removes a hub subscription, each step checked (status
// and typed body).
//
//   node hey_api.js <api-root> <bearer-token>

import {
  createUsage,
  createUsageSpecification,
  deleteUsage,
  listUsage,
  patchUsage,
  registerListener,
  retrieveUsage,
  retrieveUsageSpecification,
  unregisterListener,
} from './hey-api';
import { client } from './hey-api/client.gen';
import { args, check, ok, unique } from './check';

async function main(): Promise<void> {
  const { root, token } = args();
  client.setConfig({ baseUrl: root, auth: () => token });
  const usageType = unique('SDK-HEY-API');

  const created = await createUsage({
    body: {
      description: "made by @hey-api/openapi-ts's SDK",
      usageDate: '2024-05-01T10:00:00Z',
      usageType,
      status: 'received',
      usageCharacteristic: [{ name: 'duration', valueType: 'integer', value: 60 }],
      relatedParty: [{ id: 'sdk-party', role: 'customer', '@referredType': 'Individual' }],
    },
  });
  check(created.response.status === 201 && created.data, `create: ${created.response.status} ${JSON.stringify(created.error)}`);
  const usage = created.data;
  const id = usage.id;
  check(id && usage.href?.endsWith(`/usage/${id}`), `create: id and href ${id} ${usage.href}`);
  check(usage.usageType === usageType && usage.status === 'received', `create: ${JSON.stringify(usage)}`);
  check(usage.usageCharacteristic?.[0]?.value === 60, `create: characteristic ${JSON.stringify(usage.usageCharacteristic)}`);
  ok('createUsage');

  const listed = await listUsage({ query: { usageType, status: 'received,rated' } });
  check(listed.response.status === 200 && listed.data?.length === 1 && listed.data[0].id === id, `list usageType=${usageType}: ${JSON.stringify(listed.data)}`);
  const none = await listUsage({ query: { usageType, status: 'billed' } });
  check(none.response.status === 200 && none.data?.length === 0, 'list with status=billed is empty');
  ok('listUsage with a filter');

  const read = await retrieveUsage({ path: { id } });
  check(read.response.status === 200 && read.data?.id === id && read.data.usageType === usageType, `retrieve: ${JSON.stringify(read.data)}`);
  ok('retrieveUsage');

  const patched = await patchUsage({ path: { id }, body: { status: 'rated', description: 'rated' } });
  check(patched.response.status === 200 && patched.data?.status === 'rated' && patched.data.description === 'rated', `patch: ${patched.response.status} ${JSON.stringify(patched.data ?? patched.error)}`);
  check((await retrieveUsage({ path: { id } })).data?.status === 'rated', 'patch is stored');
  ok('patchUsage');

  const deleted = await deleteUsage({ path: { id } });
  check(deleted.response.status === 204, `delete: ${deleted.response.status}`);
  const gone = await retrieveUsage({ path: { id } });
  check(gone.response.status === 404 && gone.error?.code !== undefined, `retrieve after delete: ${gone.response.status}`);
  ok('deleteUsage (then 404)');

  const name = unique('SDK-HEY-API-spec');
  const spec = await createUsageSpecification({ body: { name, version: '1.0' } });
  check(spec.response.status === 201 && spec.data?.id && spec.data.name === name, `create specification: ${JSON.stringify(spec.data ?? spec.error)}`);
  const stored = await retrieveUsageSpecification({ path: { id: spec.data.id } });
  check(stored.data?.name === name, 'specification is stored');
  ok('createUsageSpecification');

  const callback = 'http://127.0.0.1:9/sdk/hey-api';
  const registered = await registerListener({ body: { callback, query: 'eventType=UsageCreateEvent' } });
  check(registered.response.status === 201 && registered.data?.id && registered.data.callback === callback, `register: ${JSON.stringify(registered.data ?? registered.error)}`);
  const removed = await unregisterListener({ path: { id: registered.data.id } });
  check(removed.response.status === 204, `unregister: ${removed.response.status}`);
  const again = await unregisterListener({ path: { id: registered.data.id } });
  check(again.response.status === 404, `second unregister: ${again.response.status}`);
  ok('registerListener, unregisterListener (then 404)');
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
