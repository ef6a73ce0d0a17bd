import type { RequestHandler } from 'express';
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import { MaxTokensParserWLexer } from '@escape.tech/graphql-armor-max-tokens';
import {
  GraphQLError,
  Kind,
  specifiedRules,
  type ASTVisitor,
  type DocumentNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';

/** Largest operations the API executes; each is a setting (see AppConfig). */
export interface OperationLimits {
  maxDepth: number;
  maxCost: number;
  maxAliases: number;
  maxRootFields: number;
  maxDirectives: number;
  maxTokens: number;
}

/** The `extensions.code` of each rejection, so that clients can tell them apart. */
export const LIMIT_CODES = {
  depth: 'QUERY_TOO_DEEP',
  cost: 'QUERY_TOO_COMPLEX',
  aliases: 'TOO_MANY_ALIASES',
  rootFields: 'TOO_MANY_ROOT_FIELDS',
  directives: 'TOO_MANY_DIRECTIVES',
  tokens: 'QUERY_TOO_LONG',
} as const;

type LimitKind = keyof typeof LIMIT_CODES;

/**
 * Turns graphql-armor's rejection into a validation error with our code.
 * Armor would otherwise throw out of validate(), which Apollo would report
 * as an internal error, and prefix the message with "Syntax Error".
 */
function reportAs(kind: LimitKind) {
  return {
    propagateOnRejection: false,
    onReject: [
      (context: ValidationContext | null, error: GraphQLError) => {
        const message = error.message.replace(/^Syntax Error: /, '');
        context?.reportError(
          new GraphQLError(message, { extensions: { code: LIMIT_CODES[kind] } }),
        );
      },
    ],
  };
}

/** Rejects an operation with more root fields, aliased or not, than the limit. */
function maxRootFieldsRule(limit: number): ValidationRule {
  return (context: ValidationContext): ASTVisitor => ({
    OperationDefinition(operation) {
      const count = operation.selectionSet.selections.filter(
        (selection) => selection.kind === Kind.FIELD && !selection.name.value.startsWith('__'),
      ).length;
      if (count > limit) {
        context.reportError(
          new GraphQLError(
            `An operation may select at most ${limit} root fields; this one selects ${count}.`,
            {
              nodes: [operation],
              extensions: { code: LIMIT_CODES.rootFields },
            },
          ),
        );
      }
    },
  });
}

/**
 * Validation rules of every operation, over HTTP and WebSocket alike: the
 * standard rules of GraphQL plus limits on depth, cost, aliases, root
 * fields and directives, so that one request cannot make the server do
 * unbounded work. All of them reject before anything executes.
 */
export function limitRules(limits: OperationLimits): ValidationRule[] {
  return [
    maxDepthRule({ n: limits.maxDepth, ...reportAs('depth') }),
    costLimitRule({ maxCost: limits.maxCost, ...reportAs('cost') }),
    maxAliasesRule({ n: limits.maxAliases, ...reportAs('aliases') }),
    maxDirectivesRule({ n: limits.maxDirectives, ...reportAs('directives') }),
    maxRootFieldsRule(limits.maxRootFields),
  ];
}

export function allRules(limits: OperationLimits): ValidationRule[] {
  return [...specifiedRules, ...limitRules(limits)];
}

// Max nesting of brackets that reaches the parser. graphql-js parses
// recursively, so a literal nested a few thousand levels deep overflowed the
// stack before the token or depth limits applied.
const MAX_NESTING = 200;

/**
 * Returns the deepest nesting of (), [] and {} in a GraphQL document,
 * skipping strings and comments, where brackets are text.
 */
export function nestingDepth(source: string): number {
  let depth = 0;
  let deepest = 0;
  for (let index = 0; index < source.length; index++) {
    const character = source[index];
    if (character === '#') {
      // A comment ends at a line feed or a carriage return, as in the GraphQL grammar.
      while (index < source.length && source[index] !== '\n' && source[index] !== '\r') index++;
    } else if (source.startsWith('"""', index)) {
      // In a block string a backslash escapes nothing but the closing quotes.
      index += 3;
      while (index < source.length && !source.startsWith('"""', index))
        index += source.startsWith('\\"""', index) ? 4 : 1;
      index += 2;
    } else if (character === '"') {
      index++;
      while (index < source.length && source[index] !== '"')
        index += source[index] === '\\' ? 2 : 1;
    } else if (character === '(' || character === '[' || character === '{') {
      deepest = Math.max(deepest, ++depth);
    } else if (character === ')' || character === ']' || character === '}') {
      depth--;
    }
  }
  return deepest;
}

/**
 * Parses a document with a bound on its nesting and its number of tokens,
 * so that a huge or deeply nested query is rejected while it is read, not
 * after it was built or once it has overflowed the stack. Throws a
 * GraphQLError with code QUERY_TOO_DEEP or QUERY_TOO_LONG, or the parser's
 * syntax error.
 */
export function parseWithLimit(source: string, maxTokens: number): DocumentNode {
  const nesting = nestingDepth(source);
  if (nesting > MAX_NESTING) {
    throw new GraphQLError(
      `Nesting of ${nesting} levels is deeper than the ${MAX_NESTING} allowed.`,
      {
        extensions: { code: LIMIT_CODES.depth },
      },
    );
  }
  let rejected: GraphQLError | undefined;
  const parser = new MaxTokensParserWLexer(source, {
    n: maxTokens,
    propagateOnRejection: true,
    onReject: [
      (_context, error) => {
        rejected = new GraphQLError(error.message.replace(/^Syntax Error: /, ''), {
          extensions: { code: LIMIT_CODES.tokens },
        });
      },
    ],
  });
  try {
    return parser.parseDocument();
  } catch (error) {
    throw rejected ?? error;
  }
}

// Documents that passed the parse limits are kept, so that a repeated one is
// not parsed twice; the bounds cap their memory at a few megabytes.
const MAX_REMEMBERED_DOCUMENTS = 1_000;
const MAX_REMEMBERED_LENGTH = 4_096;
const LIMIT_CODES_AT_PARSE = new Set<string>([LIMIT_CODES.tokens, LIMIT_CODES.depth]);

/**
 * Rejects an HTTP operation with too many tokens or too deep a nesting
 * before Apollo parses it, with status 400 and code QUERY_TOO_LONG or
 * QUERY_TOO_DEEP. Syntax errors are left to Apollo's own parse, which
 * reports them as usual.
 */
export function tokenLimitMiddleware(maxTokens: number): RequestHandler {
  // Integrations send the same few documents again and again; parsing one
  // that passed before would only repeat the work Apollo does anyway.
  const passed = new Set<string>();
  return (request, response, next) => {
    const body = request.body as { query?: unknown } | undefined;
    const query = typeof body?.query === 'string' ? body.query : request.query.query;
    if (typeof query !== 'string' || passed.has(query)) {
      next();
      return;
    }
    try {
      parseWithLimit(query, maxTokens);
      if (query.length <= MAX_REMEMBERED_LENGTH) {
        if (passed.size >= MAX_REMEMBERED_DOCUMENTS) passed.clear();
        passed.add(query);
      }
    } catch (error) {
      if (
        error instanceof GraphQLError &&
        LIMIT_CODES_AT_PARSE.has(String(error.extensions.code))
      ) {
        response
          .status(400)
          .json({ errors: [{ message: error.message, extensions: error.extensions }] });
        return;
      }
    }
    next();
  };
}
