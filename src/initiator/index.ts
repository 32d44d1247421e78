/** The project's iSCSI initiator: sessions, a SCSI device API, libiscsi-style URLs. */
export { ScsiDevice } from './device.ts';
export type { CdbSize, IoOptions, OpenOptions, WriteSameOptions, XcopySegment } from './device.ts';
export { Session, DEFAULT_INITIATOR_NAME } from './session.ts';
export type { ScsiRequest, ScsiResponse, SessionOptions } from './session.ts';
export { DEFAULT_OFFER, LoginExchange } from './login.ts';
export type { ChapCredentials, LoginOffer, SessionParams } from './login.ts';
export { InitiatorError, LoginFailedError, RejectedError, loginStatusName } from './errors.ts';
export type { InitiatorErrorCode } from './errors.ts';
export { describeResult, expectGood, ScsiCommandError, ScsiStatus, statusName } from './result.ts';
export type { ScsiResult } from './result.ts';
export { formatIscsiUrl, parseIscsiUrl, IscsiUrlError, DEFAULT_ISCSI_PORT } from './url.ts';
export type { IscsiUrl } from './url.ts';
