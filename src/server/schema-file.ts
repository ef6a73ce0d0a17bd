import { lexicographicSortSchema, printSchema } from 'graphql';
import { getSchema } from './schema';

/** Prints the schema as it is committed, with types sorted so that a diff shows only real changes. */
export async function printSchemaFile(): Promise<string> {
  const header = '# Generated from the type-graphql classes by `npm run schema`; do not edit.\n\n';
  return `${header}${printSchema(lexicographicSortSchema(await getSchema()))}\n`;
}
