/**
 * What `lab up` tells a Linux host to run: open-iscsi logins (iscsiadm) and a dm-multipath
 * device section, for each kind of host in the plan. The multipath settings are the ones the ALUA
 * walkthrough uses (README "Multipath walkthrough"): group paths by ALUA priority, so a host's
 * optimized paths form the group in use and the others stand by; `no_path_retry queue` keeps
 * I/O queued, not failed, while a failover moves the optimized paths (the paper: transparent
 * failover needs the host to wait out the ALUA change).
 */
import { hostPort, site } from './topology.ts';
import type { HostPlan, LabPlan } from './topology.ts';

/** What the paths of `host` should show in `multipath -ll` (ALUA prio: 50 optimized, 10 non-optimized, 1 standby). */
export function expectedPaths(plan: LabPlan, host: HostPlan): string[] {
  return host.connects.map((name) => {
    const s = site(plan, name);
    let state: string;
    if (plan.topology === 'classic') state = s.role === 'primary' ? 'active/optimized' : 'standby';
    else if (host.proximity === 'all' || host.proximity === s.role) state = 'active/optimized';
    else state = 'active/non-optimized';
    return `${hostPort(s.addresses.portal)} (${name}, ${s.role}): ${state}`;
  });
}

/** Discovery and login on each portal `host` uses: the lines lab up prints and the compose initiator runs. */
export function loginCommands(plan: LabPlan, host: HostPlan): string[] {
  return host.connects.flatMap((name) => {
    const p = hostPort(site(plan, name).addresses.portal);
    return [`iscsiadm -m discovery -t sendtargets -p ${p}`, `iscsiadm -m node -T ${plan.target} -p ${p} --login`];
  });
}

export function iscsiadmSnippet(plan: LabPlan, host: HostPlan): string {
  return [
    `# ${host.name}: a host at ${host.site}, ${host.connects.length === 2 ? 'paths to both arrays' : `paths to ${host.site} only`}`,
    `echo "InitiatorName=${host.iqn}" > /etc/iscsi/initiatorname.iscsi && systemctl restart iscsid`,
    ...loginCommands(plan, host),
  ].join('\n');
}

export const MULTIPATH_CONF = `devices {
  device {
    vendor "ARRAYSIM"
    product ".*"
    path_grouping_policy group_by_prio
    prio alua
    hardware_handler "1 alua"
    path_checker tur
    failback immediate
    no_path_retry queue
  }
}`;

/** The whole text `lab up` prints after the addresses: per host kind, the logins and what multipath should show. */
export function hostSnippets(plan: LabPlan): string {
  const out: string[] = [];
  for (const h of plan.hosts) {
    out.push(iscsiadmSnippet(plan, h));
    out.push(`multipath -ll   # one map, WWID 3${plan.wwn}; paths: ${expectedPaths(plan, h).join('; ')}`);
    out.push('');
  }
  out.push('# /etc/multipath.conf on every host (then: systemctl restart multipathd)');
  out.push(MULTIPATH_CONF);
  return out.join('\n');
}
