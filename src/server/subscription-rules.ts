import {
  GraphQLError,
  Kind,
  type DocumentNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';

/**
 * Returns an error when a subscription's root field carries @skip or
 * @include, or undefined. graphql-js cannot run such a subscription: with
 * the field skipped it throws a TypeError, and a variable in the condition
 * makes validation throw, because validation has no variable values.
 */
export function conditionalRootFieldError(
  document: DocumentNode,
  operation: OperationDefinitionNode,
): GraphQLError | undefined {
  if (operation.operation !== 'subscription') return undefined;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION)
      fragments.set(definition.name.value, definition);
  }
  if (!hasCondition(operation.selectionSet, fragments, new Set())) return undefined;
  return new GraphQLError(
    'A subscription cannot put @skip or @include on its root field. Subscribe without it, or not at all.',
    { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } },
  );
}

/** Reports whether a selection at this level, or in a fragment spread into it, has @skip or @include. */
function hasCondition(
  selectionSet: SelectionSetNode,
  fragments: Map<string, FragmentDefinitionNode>,
  visited: Set<string>,
): boolean {
  for (const selection of selectionSet.selections) {
    const conditional = selection.directives?.some(
      (directive) => directive.name.value === 'skip' || directive.name.value === 'include',
    );
    if (conditional) return true;
    if (selection.kind === Kind.INLINE_FRAGMENT) {
      if (hasCondition(selection.selectionSet, fragments, visited)) return true;
    } else if (selection.kind === Kind.FRAGMENT_SPREAD) {
      const name = selection.name.value;
      // A fragment cycle is a validation error reported elsewhere.
      if (visited.has(name)) continue;
      visited.add(name);
      const fragment = fragments.get(name);
      if (fragment && hasCondition(fragment.selectionSet, fragments, visited)) return true;
    }
  }
  return false;
}
