/**
 * What `lab up` tells a Linux host to run: open-iscsi logins (iscsiadm) and a dm-multipath
 * device section, for each kind of host in the plan. MULTIPATH_CONF is the one device section of
 * this repository: lab up prints it, the docker-compose initiator writes it (src/lab/compose.ts),
 * and the VM harness hands it to its guest (tools/vm/multipath-device.mjs → guest-tests/array.sh).
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

/**
 * dm-multipath's device section for arraysim's LUs. Group paths by ALUA priority (prio alua,
 * group_by_prio), so a host's optimized paths form the group in use and the non-optimized ones
 * stand by; fail back as soon as the optimized group returns.
 *
 * no_path_retry 18: with no usable path, queue I/O for 18 path checks (18 × polling_interval:
 * 90 s at multipathd's default of 5 s), then fail it. Long enough to ride out what the arrays
 * fix by themselves (a witness-granted failover, an ALUA transition: seconds here), so those stay
 * transparent (RPO 0, RTO 0). Not `queue` (queue_if_no_path for ever): when the paths do not
 * come back without an operator — Active Sync's link failure or secondary failure, where the
 * HPE paper says the host's VMs fail and the cluster restarts them elsewhere — queueing for ever
 * hangs the host's I/O (processes in D state) and the cluster never sees the failure to act on.
 * 18 and rr_min_io_rq 1 (a new path choice for every request within the group, also
 * multipath-tools' default) are what HPE recommends for its arrays on Linux.
 */
export const MULTIPATH_CONF = `devices {
  device {
    vendor "ARRAYSIM"
    product ".*"
    path_grouping_policy group_by_prio
    prio alua
    hardware_handler "1 alua"
    path_checker tur
    failback immediate
    no_path_retry 18
    rr_min_io_rq 1
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
