import 'reflect-metadata';
import { writeFile } from 'node:fs/promises';
import { printSchemaFile } from './schema-file';

/** Writes schema.graphql at the project root from the type-graphql classes. */
async function main(): Promise<void> {
  await writeFile('schema.graphql', await printSchemaFile());
  process.stdout.write('schema.graphql written\n');
}

void main();
