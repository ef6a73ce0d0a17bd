import 'reflect-metadata';
import { readFile } from 'node:fs/promises';
import {
  getNamedType,
  isInputObjectType,
  isObjectType,
  isInterfaceType,
  type GraphQLType,
} from 'graphql';
import { getSchema } from '../../src/server/schema';
import { printSchemaFile } from '../../src/server/schema-file';

// Names of money fields; `balanced` is the ledger check's yes-or-no answer.
const MONEY_NAME =
  /^(amount|balance(?!d$)\w*|\w*Balance\w*|available|refundable\w*|maximum|creditLimit)$/;

describe('schema.graphql', () => {
  test('matches the type-graphql classes', async () => {
    const committed = await readFile('schema.graphql', 'utf8');

    // When this fails, run `npm run schema` and commit schema.graphql.
    expect(committed).toBe(await printSchemaFile());
  });

  test('types every money field as Points', async () => {
    const schema = await getSchema();
    const moneyFields: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (type.name.startsWith('__')) continue;
      if (!isObjectType(type) && !isInterfaceType(type) && !isInputObjectType(type)) continue;
      for (const field of Object.values(type.getFields())) {
        const rootTypes = [
          schema.getQueryType(),
          schema.getMutationType(),
          schema.getSubscriptionType(),
        ];
        if (!MONEY_NAME.test(field.name) || rootTypes.includes(type as never)) continue;
        moneyFields.push(`${type.name}.${field.name}`);
        const fieldType = getNamedType(field.type as GraphQLType);
        expect(`${type.name}.${field.name}: ${fieldType.name}`).toBe(
          `${type.name}.${field.name}: Points`,
        );
      }
    }
    expect(moneyFields.length).toBeGreaterThan(10);
  });
});
