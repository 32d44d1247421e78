/**
 * What can go wrong below the SCSI level, as typed errors with a machine-readable code and, where
 * the protocol has one, the protocol's own code (login status class/detail, reject reason).
 * A SCSI status (CHECK CONDITION and the rest) is not an error here: it is a result (result.ts).
 */

export type InitiatorErrorCode =
  | 'connect-failed'
  | 'connection-lost'
  | 'login-failed'
  | 'negotiation-failed'
  | 'authentication-failed'
  | 'timeout'
  | 'rejected'
  | 'protocol-error'
  | 'session-closed'
  | 'task-aborted';

export class InitiatorError extends Error {
  constructor(readonly code: InitiatorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InitiatorError';
  }
}

/** Login status classes (RFC 7143 §11.13.5). */
export const enum LoginStatusClass {
  Success = 0,
  Redirection = 1,
  InitiatorError = 2,
  TargetError = 3,
}

/** Status-Detail names per class (RFC 7143 §11.13.5 table). */
const LOGIN_DETAIL: Record<number, Record<number, string>> = {
  1: { 1: 'TargetMovedTemporarily', 2: 'TargetMovedPermanently' },
  2: {
    0: 'InitiatorError', 1: 'AuthenticationFailure', 2: 'AuthorizationFailure', 3: 'NotFound', 4: 'TargetRemoved',
    5: 'UnsupportedVersion', 6: 'TooManyConnections', 7: 'MissingParameter', 8: 'CantIncludeInSession',
    9: 'SessionTypeNotSupported', 10: 'SessionDoesNotExist', 11: 'InvalidDuringLogin',
  },
  3: { 0: 'TargetError', 1: 'ServiceUnavailable', 2: 'OutOfResources' },
};

export function loginStatusName(statusClass: number, statusDetail: number): string {
  return LOGIN_DETAIL[statusClass]?.[statusDetail] ?? `class ${statusClass} detail ${statusDetail}`;
}

/** The target refused the login: the Login Response's Status-Class and Status-Detail. */
export class LoginFailedError extends InitiatorError {
  readonly status: string;
  constructor(readonly statusClass: number, readonly statusDetail: number, readonly targetAddress?: string) {
    const status = loginStatusName(statusClass, statusDetail);
    super('login-failed', `login refused: ${status} (status class ${statusClass}, detail ${statusDetail})`);
    this.status = status;
  }
}

/** The target answered a PDU with Reject (RFC 7143 §11.17). */
export class RejectedError extends InitiatorError {
  constructor(readonly reason: number) {
    super('rejected', `the target rejected the PDU (reason 0x${reason.toString(16)})`);
  }
}
