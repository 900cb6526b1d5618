import Testing
@testable import EmberKafka

/// The rebalance callback's decisions, one per event and protocol, without a group.
@Suite("Rebalance plan")
struct RebalancePlanTests {
    @Test("assign and revoke follow the group's protocol")
    func followsProtocol() {
        #expect(RDKafkaRebalancePlan(event: .assign, protocolName: "COOPERATIVE", configuredCooperative: false) == .assign(incremental: true))
        #expect(RDKafkaRebalancePlan(event: .revoke, protocolName: "COOPERATIVE", configuredCooperative: false) == .revoke(incremental: true))
        #expect(RDKafkaRebalancePlan(event: .assign, protocolName: "EAGER", configuredCooperative: true) == .assign(incremental: false))
        #expect(RDKafkaRebalancePlan(event: .revoke, protocolName: "EAGER", configuredCooperative: true) == .revoke(incremental: false))
    }

    @Test("a NULL or NONE protocol falls back to the configured strategy instead of crashing on NULL")
    func unknownProtocol() {
        #expect(RDKafkaRebalancePlan(event: .assign, protocolName: nil, configuredCooperative: true) == .assign(incremental: true))
        #expect(RDKafkaRebalancePlan(event: .revoke, protocolName: "NONE", configuredCooperative: true) == .revoke(incremental: true))
        #expect(RDKafkaRebalancePlan(event: .assign, protocolName: nil, configuredCooperative: false) == .assign(incremental: false))
    }

    @Test("a rebalance error drops the assignment incrementally under cooperative rebalancing, never with assign(NULL)")
    func errorUnderCooperative() {
        #expect(RDKafkaRebalancePlan(event: .error, protocolName: "COOPERATIVE", configuredCooperative: true) == .dropAssignment(incremental: true))
        #expect(RDKafkaRebalancePlan(event: .error, protocolName: nil, configuredCooperative: true) == .dropAssignment(incremental: true))
        #expect(RDKafkaRebalancePlan(event: .error, protocolName: "EAGER", configuredCooperative: true) == .dropAssignment(incremental: false))
    }

    @Test("the consumer's configuration is cooperative-sticky, so the fallback is incremental")
    func configuredStrategy() throws {
        let properties = try KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:1", groupID: "g", topics: ["t"]).librdkafkaProperties()
        #expect(properties["partition.assignment.strategy"] == "cooperative-sticky")
    }
}
