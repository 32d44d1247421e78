#!/usr/bin/env node
/**
 * Prints dm-multipath's device section for arraysim, MULTIPATH_CONF of src/lab/snippets.ts (the
 * one `lab up` prints and the docker-compose initiator writes), from the built dist/.
 * kernel-initiator-test.sh passes it to guest-tests/array.sh as TARGET_MULTIPATH_DEVICE, so the
 * VM test runs dm-multipath with the settings users are told to use.
 */
import { MULTIPATH_CONF } from '../../dist/src/lab/snippets.js';

process.stdout.write(`${MULTIPATH_CONF}\n`);
