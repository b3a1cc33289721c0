// A client team's first program with the SDK openapi-generator's `typescript-fetch` generator
// makes from the served spec (generated into ./typescript-fetch beside this file, compiled with
// tsc --strict): creates, lists with a filter, retrieves, patches and deletes a usage, creates a
// usage specification, registers and removes a hub subscription, each step checked.
//
//   node typescript_fetch.js <api-root> <bearer-token>

import {
  Configuration,
  EventsSubscriptionApi,
  ResponseError,
  UsageApi,
  UsageSpecificationApi,
  UsageStatusType,
} from './typescript-fetch';
import { args, check, ok, unique } from './check';

/** The HTTP status an SDK call failed with, or undefined when it did not fail that way. */
async function failedStatus(call: () => Promise<unknown>): Promise<number | undefined> {
  try {
    await call();
  } catch (error) {
    if (error instanceof ResponseError) return error.response.status;
    throw error;
  }
  return undefined;
}

async function main(): Promise<void> {
  const { root, token } = args();
  const config = new Configuration({ basePath: root, accessToken: async () => token });
  const usages = new UsageApi(config);
  const specs = new UsageSpecificationApi(config);
  const hub = new EventsSubscriptionApi(config);
  const usageType = unique('SDK-TS-FETCH');

  const created = await usages.createUsage({
    usageCreate: {
      description: "made by openapi-generator's typescript-fetch SDK",
      usageDate: new Date('2024-05-01T10:00:00Z'),
      usageType,
      status: UsageStatusType.Received,
      usageCharacteristic: [{ name: 'duration', valueType: 'integer', value: 60 }],
      relatedParty: [{ id: 'sdk-party', role: 'customer', atReferredType: 'Individual' }],
    },
  });
  const id = created.id;
  check(id && created.href?.endsWith(`/usage/${id}`), `create: id and href ${id} ${created.href}`);
  check(created.usageType === usageType && created.status === UsageStatusType.Received, `create: ${JSON.stringify(created)}`);
  check(created.usageDate?.getTime() === Date.parse('2024-05-01T10:00:00Z'), `create: usageDate ${created.usageDate}`);
  check(created.usageCharacteristic?.[0]?.value === 60, `create: characteristic ${JSON.stringify(created.usageCharacteristic)}`);
  ok('createUsage');

  const listed = await usages.listUsage({ usageType, status: 'received,rated' });
  check(listed.length === 1 && listed[0].id === id, `list usageType=${usageType}: ${JSON.stringify(listed)}`);
  check((await usages.listUsage({ usageType, status: 'billed' })).length === 0, 'list with status=billed is empty');
  ok('listUsage with a filter');

  const read = await usages.retrieveUsage({ id });
  check(read.id === id && read.usageType === usageType, `retrieve: ${JSON.stringify(read)}`);
  ok('retrieveUsage');

  const patched = await usages.patchUsage({ id, usageUpdate: { status: UsageStatusType.Rated, description: 'rated' } });
  check(patched.status === UsageStatusType.Rated && patched.description === 'rated', `patch: ${JSON.stringify(patched)}`);
  check((await usages.retrieveUsage({ id })).status === UsageStatusType.Rated, 'patch is stored');
  ok('patchUsage');

  await usages.deleteUsage({ id });
  const gone = await failedStatus(() => usages.retrieveUsage({ id }));
  check(gone === 404, `retrieve after delete: ${gone}`);
  ok('deleteUsage (then 404)');

  const name = unique('SDK-TS-FETCH-spec');
  const spec = await specs.createUsageSpecification({ usageSpecificationCreate: { name, version: '1.0' } });
  check(spec.id && spec.name === name, `create specification: ${JSON.stringify(spec)}`);
  check((await specs.retrieveUsageSpecification({ id: spec.id })).name === name, 'specification is stored');
  ok('createUsageSpecification');

  const callback = 'http://127.0.0.1:9/sdk/typescript-fetch';
  const subscription = await hub.registerListener({
    eventSubscriptionInput: { callback, query: 'eventType=UsageCreateEvent' },
  });
  check(subscription.id && subscription.callback === callback, `register: ${JSON.stringify(subscription)}`);
  await hub.unregisterListener({ id: subscription.id });
  const again = await failedStatus(() => hub.unregisterListener({ id: subscription.id }));
  check(again === 404, `second unregister: ${again}`);
  ok('registerListener, unregisterListener (then 404)');
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
