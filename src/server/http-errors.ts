import type { ErrorRequestHandler } from 'express';
import type { Logger } from '../logging/logger';

// Messages for the body-parser failures that a client causes, by error type.
const BODY_ERRORS: Record<string, string> = {
  'entity.parse.failed': 'The request body is not valid JSON',
  'entity.too.large': 'The request body is larger than the server accepts',
  'charset.unsupported': 'The request body must be UTF-8 JSON',
  'encoding.unsupported': 'The request body must not be compressed',
  'request.aborted': 'The request was aborted',
  'request.size.invalid': 'The request body is shorter or longer than its Content-Length',
};

/**
 * Responds to errors that happen outside GraphQL execution, such as a body that
 * is not JSON, with a GraphQL-shaped JSON error instead of Express's HTML
 * page, which shows a stack trace outside production. The body is never
 * logged: it may hold a prepaid ID.
 */
export function jsonErrorHandler(logger: Logger): ErrorRequestHandler {
  return (error, request, response, next) => {
    if (response.headersSent) {
      next(error);
      return;
    }
    const requestId = (request as { id?: string }).id;
    const status = Number(
      (error as { status?: number }).status ?? (error as { statusCode?: number }).statusCode ?? 500,
    );
    const type = String((error as { type?: string }).type ?? '');
    if (status >= 400 && status < 500) {
      logger.warn({ requestId, status, type }, 'rejected an unreadable request');
      response.status(status).json({
        errors: [
          {
            message: BODY_ERRORS[type] ?? 'The request is invalid',
            extensions: { code: 'BAD_REQUEST' },
          },
        ],
      });
      return;
    }
    const { body: _body, ...safe } = error as Record<string, unknown>;
    logger.error(
      {
        err: { message: (error as Error).message, stack: (error as Error).stack, ...safe },
        requestId,
      },
      'unexpected error in HTTP request',
    );
    response.status(500).json({
      errors: [
        {
          message: 'Internal server error',
          extensions: { code: 'INTERNAL_SERVER_ERROR', requestId },
        },
      ],
    });
  };
}
