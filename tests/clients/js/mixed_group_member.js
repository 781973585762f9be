#!/usr/bin/env node
// One kafkajs member of a classic consumer group, driven by
// tests/clients/python/check_mixed_group.py (which also runs a librdkafka and a
// kafka-python member in the same group).
//
// Usage: node mixed_group_member.js HOST:PORT GROUP TOPIC CLIENT_ID
//
// Subscribes to TOPIC in GROUP with the `range` assignor (kafkajs has none
// built in: RangeAssigner below implements Kafka's RangeAssignor under the
// protocol name `range` that librdkafka and kafka-python use), auto-commits
// after every batch, and reports on stdout, one JSON object a line:
//
//   {"event":"running"}                                  subscribed, consumer.run() started
//   {"event":"join","memberId":..,"leaderId":..,"isLeader":..,"protocol":..,"assignment":{topic:[p..]}}
//   {"event":"rebalancing","memberId":..}
//   {"event":"record","topic":..,"partition":..,"offset":..,"key":..}
//   {"event":"crash","error":..} / {"event":"log",..}     trouble
//   {"event":"stopped"}                                  left the group (disconnect)
//
// It leaves the group and exits when its stdin closes (the driver closes it to
// stop the member, and it closes by itself if the driver dies), and gives up
// on its own after WATCHDOG_MS.
'use strict'

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'
const { Kafka, logLevel, AssignerProtocol } = require('kafkajs')

const WATCHDOG_MS = 280000
const [bootstrap, groupId, topic, clientId] = process.argv.slice(2)
if (!clientId) {
  console.error('usage: node mixed_group_member.js HOST:PORT GROUP TOPIC CLIENT_ID')
  process.exit(2)
}

const emit = obj => process.stdout.write(JSON.stringify(obj) + '\n')

// Kafka's RangeAssigner (org.apache.kafka.clients.consumer.RangeAssignor, also
// librdkafka's `range` and kafka-python's RangePartitionAssignor): for each
// topic, its partitions in numeric order are cut into contiguous ranges, one
// per subscribed member in member-id order; the first (partitions % members)
// members get one more. Subscriptions come from each member's metadata
// (ConsumerProtocolSubscription; versions above 0 only append fields, which
// MemberMetadata.decode leaves unread).
const RangeAssigner = ({ cluster }) => ({
  name: 'range',
  version: 0,
  async assign ({ members }) {
    const membersPerTopic = new Map()
    for (const { memberId, memberMetadata } of members) {
      const { topics } = AssignerProtocol.MemberMetadata.decode(memberMetadata)
      for (const t of topics) {
        if (!membersPerTopic.has(t)) membersPerTopic.set(t, [])
        membersPerTopic.get(t).push(memberId)
      }
    }
    const assignment = Object.fromEntries(members.map(({ memberId }) => [memberId, {}]))
    for (const [t, memberIds] of membersPerTopic) {
      memberIds.sort()
      const partitions = cluster.findTopicPartitionMetadata(t).map(p => p.partitionId).sort((a, b) => a - b)
      const each = Math.floor(partitions.length / memberIds.length)
      const extra = partitions.length % memberIds.length
      memberIds.forEach((memberId, i) => {
        const start = each * i + Math.min(i, extra)
        const length = each + (i < extra ? 1 : 0)
        if (length > 0) assignment[memberId][t] = partitions.slice(start, start + length)
      })
    }
    return members.map(({ memberId }) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({
        version: this.version,
        assignment: assignment[memberId],
      }),
    }))
  },
  protocol ({ topics }) {
    return {
      name: this.name,
      metadata: AssignerProtocol.MemberMetadata.encode({ version: this.version, topics }),
    }
  },
})

async function main () {
  const kafka = new Kafka({
    clientId,
    brokers: [bootstrap],
    connectionTimeout: 5000,
    requestTimeout: 15000,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 },
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, level, label, log }) => {
      const { message, ...extra } = log
      emit({ event: 'log', level: label, namespace, message, extra })
    },
  })
  const consumer = kafka.consumer({
    groupId,
    partitionAssigners: [RangeAssigner],
    // The same timings as the other two members (check_mixed_group.py).
    sessionTimeout: 30000,
    rebalanceTimeout: 30000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 250,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 },
  })
  const { GROUP_JOIN, REBALANCING, CRASH } = consumer.events
  consumer.on(GROUP_JOIN, ({ payload }) => emit({
    event: 'join',
    memberId: payload.memberId,
    leaderId: payload.leaderId,
    isLeader: payload.isLeader,
    protocol: payload.groupProtocol,
    assignment: payload.memberAssignment,
  }))
  consumer.on(REBALANCING, ({ payload }) => emit({ event: 'rebalancing', memberId: payload.memberId }))
  consumer.on(CRASH, ({ payload }) => emit({
    event: 'crash', error: `${payload.error.name}: ${payload.error.message}`, restart: payload.restart,
  }))

  let stopping = null
  const stop = () => {
    if (!stopping) {
      stopping = consumer.disconnect().then(() => {
        emit({ event: 'stopped' })
        process.exit(0)
      }, e => {
        emit({ event: 'crash', error: `disconnect: ${e.name}: ${e.message}` })
        process.exit(1)
      })
    }
    return stopping
  }
  process.stdin.on('end', stop)
  process.stdin.on('error', stop)
  process.stdin.resume()

  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    autoCommit: true, // kafkajs commits after every batch
    eachMessage: async ({ topic, partition, message }) => {
      emit({ event: 'record', topic, partition, offset: message.offset, key: message.key && message.key.toString() })
    },
  })
  emit({ event: 'running' })
}

setTimeout(() => {
  emit({ event: 'crash', error: `gave up after ${WATCHDOG_MS / 1000}s (the driver never closed stdin)` })
  process.exit(1)
}, WATCHDOG_MS).unref()

main().catch(e => {
  emit({ event: 'crash', error: `${e.name}: ${e.message}` })
  process.exit(1)
})
