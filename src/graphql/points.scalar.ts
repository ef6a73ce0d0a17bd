import { GraphQLError, GraphQLScalarType, Kind, type ValueNode } from 'graphql';

const DESCRIPTION =
  'An amount of points (1 point = 1 yen): a whole number in the JavaScript safe-integer range, ' +
  '-(2^53 - 1) to 2^53 - 1. Strings and fractions are rejected.';

function invalid(value: unknown): GraphQLError {
  return new GraphQLError(
    `Points must be a whole number between -(2^53 - 1) and 2^53 - 1, got ${describe(value)}`,
    { extensions: { code: 'BAD_USER_INPUT' } },
  );
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 40))}`;
  return String(value).slice(0, 40);
}

/** Describes a literal of the query text for the error message, as the client wrote it. */
function literalText(node: ValueNode): { toString(): string } {
  if (node.kind === Kind.STRING) return node.value;
  if (node.kind === Kind.FLOAT) return { toString: () => node.value };
  return { toString: () => `a ${node.kind.toLowerCase()} value` };
}

function parsePoints(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalid(value);
  return value;
}

/**
 * Money on the API. GraphQL's Int is 32-bit and Float is inexact, so points
 * get their own scalar: a JSON number that must be a safe integer.
 */
export const PointsScalar = new GraphQLScalarType({
  name: 'Points',
  description: DESCRIPTION,
  serialize(value) {
    const points = typeof value === 'bigint' ? Number(value) : value;
    if (typeof points !== 'number' || !Number.isSafeInteger(points)) {
      throw new GraphQLError(`cannot send ${describe(value)} as Points`);
    }
    return points;
  },
  parseValue: parsePoints,
  parseLiteral(node: ValueNode) {
    // An IntValue literal may have any number of digits, so it is range-checked
    // after conversion; Float, String and other literals are rejected outright.
    if (node.kind !== Kind.INT) throw invalid(literalText(node));
    const value = Number(node.value);
    if (!Number.isSafeInteger(value)) throw invalid({ toString: () => node.value.slice(0, 40) });
    return value;
  },
});
