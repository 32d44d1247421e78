/** Runtime configuration of the iSCSI layer (built by src/config.ts from CLI flags or YAML). */

export interface PortalConfig {
  host: string;
  port: number;
  /** iSCSI target portal group tag; also the relative target port identifier. */
  tpgt: number;
  /** ALUA target port group this port belongs to (defaults to tpgt). */
  targetPortGroup: number;
}

export interface ChapConfig {
  /** Credentials the initiator must present (one-way CHAP). */
  user: string;
  secret: string;
  /** Credentials the target presents when the initiator asks (mutual CHAP). */
  mutualUser?: string;
  mutualSecret?: string;
}

export interface IscsiTargetConfig {
  name: string;
  alias?: string;
  /** Initiator IQNs allowed to log in; empty or absent = everyone. */
  acl?: string[];
  chap?: ChapConfig;
}

export interface IscsiTuning {
  /** Commands the target accepts ahead (CmdSN window). */
  queueDepth: number;
  /** Seconds between target NOP-In pings on an idle connection (0 = never). */
  nopInterval: number;
  /** Seconds to wait for the NOP-Out answer before dropping the connection. */
  nopTimeout: number;
  /** Seconds a login may take before the connection is dropped. */
  loginTimeout: number;
  /** Target's side of the operational keys (overrides DEFAULT_TARGET_LIMITS). */
  keys: Record<string, string>;
}

export const DEFAULT_TUNING: IscsiTuning = {
  queueDepth: 128,
  nopInterval: 30,
  nopTimeout: 30,
  loginTimeout: 15,
  keys: {},
};
