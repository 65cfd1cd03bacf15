#!/usr/bin/python3
"""Encodes Istio messages with an encoder independent of ours, for proto_test.cpp.

The schemas below are written by hand from Istio's field numbers (not read from
proto/*.proto), and the pure-Python protobuf runtime does the encoding, so a
mistake in our .proto files or in libprotobuf's C++ encoder cannot hide itself.
Prints C++ string constants (hex) to paste into proto/proto_test.cpp.

  /usr/bin/python3 tests/support/istio_wire_fixtures.py
"""
import os

# Must be set before google.protobuf is imported: the default backend on Debian
# is the same C++ libprotobuf the unit tests link.
os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory  # noqa: E402
from google.protobuf import struct_pb2, wrappers_pb2  # noqa: E402
from google.protobuf.internal import api_implementation  # noqa: E402

assert api_implementation.Type() == "python", api_implementation.Type()

F = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    "string": F.TYPE_STRING,
    "bytes": F.TYPE_BYTES,
    "uint32": F.TYPE_UINT32,
    "int32": F.TYPE_INT32,
    "int64": F.TYPE_INT64,
    "bool": F.TYPE_BOOL,
}


def add_message(container, name, fields, oneofs=(), enums=None):
    """fields: (name, number, type, label) with label in '', 'repeated', 'optional'
    or 'oneof:<name>'; type is a scalar name, 'enum:.pkg.E' or a '.pkg.Message'."""
    msg = container.add(name=name)
    for oneof in oneofs:
        msg.oneof_decl.add(name=oneof)
    for enum_name, values in (enums or {}).items():
        enum = msg.enum_type.add(name=enum_name)
        for value_name, number in values:
            enum.value.add(name=value_name, number=number)
    for fname, number, ftype, label in fields:
        field = msg.field.add(name=fname, number=number, json_name=fname)
        field.label = F.LABEL_REPEATED if label == "repeated" else F.LABEL_OPTIONAL
        if ftype in SCALARS:
            field.type = SCALARS[ftype]
        elif ftype.startswith("enum:"):
            field.type = F.TYPE_ENUM
            field.type_name = ftype[len("enum:"):]
        else:
            field.type = F.TYPE_MESSAGE
            field.type_name = ftype
        if label.startswith("oneof:"):
            field.oneof_index = list(oneofs).index(label[len("oneof:"):])
        if label == "optional":
            # proto3 `optional` is a synthetic one-field oneof named _<field>.
            field.proto3_optional = True
            field.oneof_index = len(msg.oneof_decl)
            msg.oneof_decl.add(name="_" + fname)
    return msg


def add_map_entry(msg, entry_name, key_type, value_type):
    entry = add_message(msg.nested_type, entry_name,
                        [("key", 1, key_type, ""), ("value", 2, value_type, "")])
    entry.options.map_entry = True


def new_file(name, package, deps):
    return descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3",
                                              dependency=deps)


W = ".istio.workload."
workload = new_file("fixture_workload.proto", "istio.workload",
                    ["google/protobuf/any.proto", "google/protobuf/wrappers.proto"])
for enum_name, values in {
    "IPFamilies": [("AUTOMATIC", 0), ("IPV4_ONLY", 1), ("IPV6_ONLY", 2), ("DUAL", 3)],
    "NetworkMode": [("STANDARD", 0), ("HOST_NETWORK", 1)],
    "WorkloadStatus": [("HEALTHY", 0), ("UNHEALTHY", 1)],
    "WorkloadType": [("DEPLOYMENT", 0), ("CRONJOB", 1), ("POD", 2), ("JOB", 3)],
    "AppProtocol": [("UNKNOWN", 0), ("HTTP11", 1), ("HTTP2", 2), ("GRPC", 3), ("TCP", 4),
                    ("TLS", 5)],
    "TunnelProtocol": [("NONE", 0), ("HBONE", 1), ("LEGACY_ISTIO_MTLS", 2)],
}.items():
    enum = workload.enum_type.add(name=enum_name)
    for value_name, number in values:
        enum.value.add(name=value_name, number=number)

add_message(workload.message_type, "Address",
            [("workload", 1, W + "Workload", "oneof:type"),
             ("service", 2, W + "Service", "oneof:type")], oneofs=["type"])
add_message(workload.message_type, "Service", [
    ("name", 1, "string", ""), ("namespace", 2, "string", ""), ("hostname", 3, "string", ""),
    ("addresses", 4, W + "NetworkAddress", "repeated"), ("ports", 5, W + "Port", "repeated"),
    ("subject_alt_names", 6, "string", "repeated"), ("waypoint", 7, W + "GatewayAddress", ""),
    ("load_balancing", 8, W + "LoadBalancing", ""), ("ip_families", 9, "enum:" + W + "IPFamilies", ""),
    ("extensions", 10, W + "Extension", "repeated"), ("canonical", 11, "bool", ""),
    ("ingress_use_waypoint", 12, "bool", ""),
    ("weighted_waypoints", 13, W + "WeightedWaypoint", "repeated"),
    ("visibility", 14, "enum:" + W + "Service.Visibility", ""),
], enums={"Visibility": [("PUBLIC", 0), ("NAMESPACE", 1)]})
add_message(workload.message_type, "LoadBalancing", [
    ("routing_preference", 1, "enum:" + W + "LoadBalancing.Scope", "repeated"),
    ("mode", 2, "enum:" + W + "LoadBalancing.Mode", ""),
    ("health_policy", 3, "enum:" + W + "LoadBalancing.HealthPolicy", ""),
], enums={
    "Scope": [("UNSPECIFIED_SCOPE", 0), ("REGION", 1), ("ZONE", 2), ("SUBZONE", 3), ("NODE", 4),
              ("CLUSTER", 5), ("NETWORK", 6)],
    "Mode": [("UNSPECIFIED_MODE", 0), ("STRICT", 1), ("FAILOVER", 2), ("PASSTHROUGH", 3)],
    "HealthPolicy": [("ONLY_HEALTHY", 0), ("ALLOW_ALL", 1)],
})
wl = add_message(workload.message_type, "Workload", [
    ("name", 1, "string", ""), ("namespace", 2, "string", ""), ("addresses", 3, "bytes", "repeated"),
    ("network", 4, "string", ""), ("tunnel_protocol", 5, "enum:" + W + "TunnelProtocol", ""),
    ("trust_domain", 6, "string", ""), ("service_account", 7, "string", ""),
    ("waypoint", 8, W + "GatewayAddress", ""), ("node", 9, "string", ""),
    ("canonical_name", 10, "string", ""), ("canonical_revision", 11, "string", ""),
    ("workload_type", 12, "enum:" + W + "WorkloadType", ""), ("workload_name", 13, "string", ""),
    ("native_tunnel", 14, "bool", ""), ("authorization_policies", 16, "string", "repeated"),
    ("status", 17, "enum:" + W + "WorkloadStatus", ""), ("cluster_id", 18, "string", ""),
    ("network_gateway", 19, W + "GatewayAddress", ""), ("uid", 20, "string", ""),
    ("hostname", 21, "string", ""), ("services", 22, W + "Workload.ServicesEntry", "repeated"),
    ("application_tunnel", 23, W + "ApplicationTunnel", ""), ("locality", 24, W + "Locality", ""),
    ("network_mode", 25, "enum:" + W + "NetworkMode", ""),
    ("extensions", 26, W + "Extension", "repeated"),
    ("capacity", 27, ".google.protobuf.UInt32Value", ""),
])
add_map_entry(wl, "ServicesEntry", "string", W + "PortList")
add_message(workload.message_type, "Locality", [
    ("region", 1, "string", ""), ("zone", 2, "string", ""), ("subzone", 3, "string", "")])
add_message(workload.message_type, "PortList", [("ports", 1, W + "Port", "repeated")])
add_message(workload.message_type, "Port", [
    ("service_port", 1, "uint32", ""), ("target_port", 2, "uint32", ""),
    ("app_protocol", 3, "enum:" + W + "AppProtocol", "")])
add_message(workload.message_type, "ApplicationTunnel", [
    ("protocol", 1, "enum:" + W + "ApplicationTunnel.Protocol", ""), ("port", 2, "uint32", "")],
    enums={"Protocol": [("NONE", 0), ("PROXY", 1)]})
add_message(workload.message_type, "GatewayAddress", [
    ("hostname", 1, W + "NamespacedHostname", "oneof:destination"),
    ("address", 2, W + "NetworkAddress", "oneof:destination"),
    ("hbone_mtls_port", 3, "uint32", "")], oneofs=["destination"])
add_message(workload.message_type, "WeightedWaypoint", [
    ("destination", 1, W + "GatewayAddress", ""), ("weight", 2, "uint32", "")])
add_message(workload.message_type, "NetworkAddress", [
    ("network", 1, "string", ""), ("address", 2, "bytes", ""), ("length", 3, "uint32", "optional")])
add_message(workload.message_type, "NamespacedHostname", [
    ("namespace", 1, "string", ""), ("hostname", 2, "string", "")])
add_message(workload.message_type, "Extension", [
    ("name", 1, "string", ""), ("config", 2, ".google.protobuf.Any", "")])

S = ".istio.security."
security = new_file("fixture_authorization.proto", "istio.security",
                    ["google/protobuf/empty.proto", "fixture_workload.proto"])
for enum_name, values in {"Scope": [("GLOBAL", 0), ("NAMESPACE", 1), ("WORKLOAD_SELECTOR", 2)],
                          "Action": [("ALLOW", 0), ("DENY", 1)]}.items():
    enum = security.enum_type.add(name=enum_name)
    for value_name, number in values:
        enum.value.add(name=value_name, number=number)
add_message(security.message_type, "Authorization", [
    ("name", 1, "string", ""), ("namespace", 2, "string", ""), ("scope", 3, "enum:" + S + "Scope", ""),
    ("action", 4, "enum:" + S + "Action", ""), ("rules", 5, S + "Rule", "repeated"),
    ("dry_run", 6, "bool", ""), ("extensions", 7, W + "Extension", "repeated")])
add_message(security.message_type, "Rule", [("clauses", 1, S + "Clause", "repeated")])
add_message(security.message_type, "Clause", [("matches", 2, S + "Match", "repeated")])
add_message(security.message_type, "Match", [
    ("namespaces", 1, S + "StringMatch", "repeated"),
    ("not_namespaces", 2, S + "StringMatch", "repeated"),
    ("principals", 3, S + "StringMatch", "repeated"),
    ("not_principals", 4, S + "StringMatch", "repeated"),
    ("source_ips", 5, S + "Address", "repeated"), ("not_source_ips", 6, S + "Address", "repeated"),
    ("destination_ips", 7, S + "Address", "repeated"),
    ("not_destination_ips", 8, S + "Address", "repeated"),
    ("destination_ports", 9, "uint32", "repeated"), ("not_destination_ports", 10, "uint32", "repeated"),
    ("service_accounts", 11, S + "ServiceAccountMatch", "repeated"),
    ("not_service_accounts", 12, S + "ServiceAccountMatch", "repeated"),
    ("extensions", 13, W + "Extension", "repeated")])
add_message(security.message_type, "Address", [("address", 1, "bytes", ""), ("length", 2, "uint32", "")])
add_message(security.message_type, "ServiceAccountMatch", [
    ("namespace", 1, "string", ""), ("serviceAccount", 2, "string", "")])
add_message(security.message_type, "StringMatch", [
    ("exact", 1, "string", "oneof:match_type"), ("prefix", 2, "string", "oneof:match_type"),
    ("suffix", 3, "string", "oneof:match_type"),
    ("presence", 4, ".google.protobuf.Empty", "oneof:match_type")], oneofs=["match_type"])

Z = ".istio.workload.zds."
zds = new_file("fixture_zds.proto", "istio.workload.zds", [])
add_message(zds.message_type, "WorkloadInfo", [
    ("name", 1, "string", ""), ("namespace", 2, "string", ""), ("service_account", 3, "string", "")])
add_message(zds.message_type, "AddWorkload", [
    ("uid", 1, "string", ""), ("workload_info", 2, Z + "WorkloadInfo", "")])
add_message(zds.message_type, "KeepWorkload", [("uid", 1, "string", "")])
add_message(zds.message_type, "DelWorkload", [("uid", 2, "string", "")])
add_message(zds.message_type, "SnapshotSent", [])
add_message(zds.message_type, "WorkloadRequest", [
    ("add", 1, Z + "AddWorkload", "oneof:payload"), ("del", 2, Z + "DelWorkload", "oneof:payload"),
    ("snapshot_sent", 3, Z + "SnapshotSent", "oneof:payload"),
    ("keep", 5, Z + "KeepWorkload", "oneof:payload")], oneofs=["payload"])

citadel = new_file("fixture_citadel.proto", "istio.v1.auth", ["google/protobuf/struct.proto"])
add_message(citadel.message_type, "IstioCertificateRequest", [
    ("csr", 1, "string", ""), ("validity_duration", 3, "int64", ""),
    ("metadata", 4, ".google.protobuf.Struct", "")])
add_message(citadel.message_type, "IstioCertificateResponse", [("cert_chain", 1, "string", "repeated")])

X = ".envoy.service.discovery.v3."
xds = new_file("fixture_xds.proto", "envoy.service.discovery.v3", ["google/protobuf/any.proto"])
resource = add_message(xds.message_type, "Resource", [
    ("version", 1, "string", ""), ("resource", 2, ".google.protobuf.Any", ""),
    ("name", 3, "string", ""), ("aliases", 4, "string", "repeated")])
add_message(xds.message_type, "DeltaDiscoveryResponse", [
    ("system_version_info", 1, "string", ""), ("resources", 2, X + "Resource", "repeated"),
    ("type_url", 4, "string", ""), ("nonce", 5, "string", ""),
    ("removed_resources", 6, "string", "repeated")])

pool = descriptor_pool.DescriptorPool()
for well_known in (any_pb2, wrappers_pb2, struct_pb2):
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(well_known.DESCRIPTOR.serialized_pb))
from google.protobuf import empty_pb2  # noqa: E402
pool.Add(descriptor_pb2.FileDescriptorProto.FromString(empty_pb2.DESCRIPTOR.serialized_pb))
for file_proto in (workload, security, zds, citadel, xds):
    pool.Add(file_proto)
factory = message_factory.MessageFactory(pool)


def new(full_name):
    return factory.GetPrototype(pool.FindMessageTypeByName(full_name))()


def ip(text):
    import ipaddress
    return ipaddress.ip_address(text).packed


# --- the messages; proto_test.cpp asserts exactly these values -----------------
def workload_address():
    addr = new("istio.workload.Address")
    w = addr.workload
    w.uid = "Kubernetes//Pod/ns1/pod-a"
    w.name = "pod-a"
    w.namespace = "ns1"
    w.addresses.append(ip("10.0.0.5"))
    w.addresses.append(ip("fd00::5"))
    w.tunnel_protocol = 1  # HBONE
    w.service_account = "sa-a"
    w.waypoint.address.address = ip("10.0.0.9")
    w.waypoint.hbone_mtls_port = 15008
    w.node = "node-1"
    w.workload_type = 2  # POD
    w.status = 1  # UNHEALTHY
    w.network_gateway.hostname.namespace = "istio-system"
    w.network_gateway.hostname.hostname = "eastwest.example"
    w.network_gateway.hbone_mtls_port = 15008
    w.services["ns1/svc.ns1.svc.cluster.local"].ports.add(service_port=80, target_port=8080,
                                                          app_protocol=1)  # HTTP11
    w.application_tunnel.protocol = 1  # PROXY
    w.application_tunnel.port = 15088
    w.locality.region = "r1"
    w.locality.zone = "z1"
    w.network_mode = 1  # HOST_NETWORK
    w.capacity.value = 0  # explicitly zero, which differs from absent
    w.capacity.SetInParent()
    return addr


def service_address():
    addr = new("istio.workload.Address")
    s = addr.service
    s.name = "svc"
    s.namespace = "ns1"
    s.hostname = "svc.ns1.svc.cluster.local"
    host = s.addresses.add(network="net1", address=ip("10.96.0.10"))
    assert not host.HasField("length")
    cidr = s.addresses.add(address=ip("10.200.0.0"))
    cidr.length = 24
    s.ports.add(service_port=443, target_port=0, app_protocol=5)  # named port, TLS
    s.load_balancing.routing_preference.extend([6, 1, 2])  # NETWORK, REGION, ZONE
    s.load_balancing.mode = 2  # FAILOVER
    s.load_balancing.health_policy = 1  # ALLOW_ALL
    s.ip_families = 3  # DUAL
    s.weighted_waypoints.add(weight=90).destination.hostname.hostname = "wp.ns1"
    s.visibility = 1  # NAMESPACE
    return addr


def authorization():
    a = new("istio.security.Authorization")
    a.name = "deny-b"
    a.namespace = "ns1"
    a.scope = 2  # WORKLOAD_SELECTOR
    a.action = 1  # DENY
    a.dry_run = True
    m = a.rules.add().clauses.add().matches.add()
    m.namespaces.add(exact="ns2")
    m.principals.add(suffix="/sa/b")
    m.not_principals.add().presence.SetInParent()
    m.source_ips.add(address=ip("10.1.0.0"), length=16)
    m.destination_ports.extend([443, 8443])
    m.service_accounts.add(namespace="ns2", serviceAccount="b")
    return a


def zds_add():
    r = new("istio.workload.zds.WorkloadRequest")
    r.add.uid = "pod-uid-1"
    r.add.workload_info.name = "pod-a"
    r.add.workload_info.namespace = "ns1"
    r.add.workload_info.service_account = "sa-a"
    return r


def zds_del():
    r = new("istio.workload.zds.WorkloadRequest")
    r.__getattribute__("del").uid = "pod-uid-1"
    return r


def certificate_request():
    r = new("istio.v1.auth.IstioCertificateRequest")
    r.csr = "-----BEGIN CERTIFICATE REQUEST-----"
    r.validity_duration = 86400
    r.metadata.fields["ImpersonatedIdentity"].string_value = "spiffe://cluster.local/ns/ns1/sa/sa-a"
    return r


def delta_response():
    r = new("envoy.service.discovery.v3.DeltaDiscoveryResponse")
    r.system_version_info = "v7"
    r.type_url = "type.googleapis.com/istio.workload.Address"
    r.nonce = "n-1"
    res = r.resources.add(name="Kubernetes//Pod/ns1/pod-a", version="3")
    res.resource.Pack(workload_address())
    r.removed_resources.append("ns1/gone.ns1.svc.cluster.local")
    return r


def cpp_constant(name, message):
    data = message.SerializeToString(deterministic=True)
    hexed = data.hex()
    lines = [hexed[i:i + 88] for i in range(0, len(hexed), 88)]
    body = "\n".join('    "%s"' % line for line in lines)
    return "constexpr std::string_view %s =\n%s;" % (name, body)


if __name__ == "__main__":
    print("// Generated by tests/support/istio_wire_fixtures.py (pure-Python protobuf).")
    for name, build in [("kPyWorkloadAddress", workload_address),
                        ("kPyServiceAddress", service_address),
                        ("kPyAuthorization", authorization),
                        ("kPyZdsAdd", zds_add),
                        ("kPyZdsDel", zds_del),
                        ("kPyCertificateRequest", certificate_request),
                        ("kPyDeltaResponse", delta_response)]:
        print(cpp_constant(name, build()))
