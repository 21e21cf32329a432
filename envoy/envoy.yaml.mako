## Alea edge: one mTLS listener for native gRPC and REST (gRPC-JSON transcoding), routing
## each user-facing RPC of every running service to that service over mTLS.
## Rendered by services/cli/mesh_envoy.py into $ALEA_HOME/envoy.yaml; the Python side
## decides which services and RPCs exist (from the descriptor set), this file how they are served.
<%def name="tls_certificate(name)">
            - certificate_chain: {filename: "${pki}/${name}.crt"}
              private_key: {filename: "${pki}/${name}.key"}
</%def>\
<%def name="transcoder(sse, print_defaults=True)">
"@type": type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder
proto_descriptor: "${descriptor}"
services: [${", ".join(proto_services)}]
convert_grpc_status: true
request_validation_options:
  reject_unknown_method: true
  reject_unknown_query_parameters: true
  reject_binding_body_field_collisions: true
print_options:
  add_whitespace: false
  always_print_primitive_fields: ${"true" if print_defaults else "false"}
  preserve_proto_field_names: false
% if sse:
  stream_sse_style_delimited: true
% else:
  stream_newline_delimited: true
% endif
</%def>\
admin:
  address:
    socket_address: {address: 127.0.0.1, port_value: ${admin_port}}

# --- Edge hardening: the overload manager sheds load before Envoy runs out of memory ----
overload_manager:
  refresh_interval: 0.25s
  resource_monitors:
  - name: envoy.resource_monitors.fixed_heap
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig
      max_heap_size_bytes: ${max_heap_bytes}
  - name: envoy.resource_monitors.global_downstream_max_connections
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig
      max_active_downstream_connections: ${max_connections}
  actions:
  - name: envoy.overload_actions.shrink_heap
    triggers:
    - name: envoy.resource_monitors.fixed_heap
      threshold: {value: 0.95}
  - name: envoy.overload_actions.stop_accepting_requests
    triggers:
    - name: envoy.resource_monitors.fixed_heap
      threshold: {value: 0.98}
# --- end of edge hardening -------------------------------------------------------------

static_resources:
  listeners:
  - name: edge
    address:
      socket_address: {address: ${listen_address}, port_value: ${edge_port}}
    # Bounds what one connection buffers before applying backpressure.
    per_connection_buffer_limit_bytes: 1048576
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_params: {tls_minimum_protocol_version: TLSv1_2}
            tls_certificates:${tls_certificate("edge")}
            validation_context:
              trusted_ca: {filename: "${pki}/ca.crt"}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: edge
          codec_type: AUTO
          use_remote_address: true
          # Client-chosen request ids are kept (they tie a client's logs to ours); missing
          # ones are generated, and every response carries the id.
          generate_request_id: true
          preserve_external_request_id: true
          always_set_request_id_in_response: true
          # Upstreams learn the verified client identity, never a client-supplied header.
          forward_client_cert_details: SANITIZE_SET
          set_current_client_cert_details: {uri: true}
          stream_idle_timeout: 300s
          request_headers_timeout: 10s
          # --- Edge hardening (Envoy's edge-proxy best practices) ---------------------------
          # Paths are normalised (RFC 3986 dot segments, repeated slashes) before routing and
          # an escaped slash or backslash (%2F, %5C) is refused with 400, so no spelling of a
          # path reaches a route its plain form would not.
          normalize_path: true
          merge_slashes: true
          path_with_escaped_slashes_action: REJECT_REQUEST
          # Request headers, path included, up to ${max_request_headers_kb} KiB: beyond, HTTP/1.1 gets 431;
          # HTTP/2 advertises the limit (SETTINGS_MAX_HEADER_LIST_SIZE) and drops a
          # connection that ignores it. Services accept more metadata than this, so a
          # request the edge lets through is never refused upstream for its size.
          max_request_headers_kb: ${max_request_headers_kb}
          common_http_protocol_options:
            idle_timeout: 600s
            headers_with_underscores_action: REJECT_REQUEST
            max_headers_count: 100
          # Small flow-control windows bound what one stream or connection can push at us
          # before we read it (Envoy's defaults are 256 MiB).
          http2_protocol_options:
            max_concurrent_streams: 100
            initial_stream_window_size: 65536
            initial_connection_window_size: 1048576
          # --- end of edge hardening ---------------------------------------------------------
% if otlp_collector:
          ## --- tracing (OpenTelemetry): begin -------------------------------------------
          # Every request starts (or continues, from a client's traceparent) a trace; the
          # W3C traceparent goes upstream, so the services' spans join it.
          tracing:
            provider:
              name: envoy.tracers.opentelemetry
              typed_config:
                "@type": type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig
                grpc_service:
                  envoy_grpc: {cluster_name: opentelemetry_collector}
                  timeout: 1s
                service_name: alea-edge
            random_sampling: {value: 100}
          ## --- tracing: end ---------------------------------------------------------------
% endif
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: "${access_log}"
              log_format:
                json_format:
                  time: "%START_TIME%"
                  request_id: "%REQ(X-REQUEST-ID)%"
                  method: "%REQ(X-ENVOY-ORIGINAL-METHOD?:METHOD)%"
                  path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"
                  route: "%ROUTE_NAME%"
                  protocol: "%PROTOCOL%"
                  status: "%RESPONSE_CODE%"
                  grpc_status: "%GRPC_STATUS(CAMEL_STRING)%"
                  flags: "%RESPONSE_FLAGS%"
                  details: "%RESPONSE_CODE_DETAILS%"
                  bytes_in: "%BYTES_RECEIVED%"
                  bytes_out: "%BYTES_SENT%"
                  duration_ms: "%DURATION%"
                  upstream: "%UPSTREAM_CLUSTER%"
                  upstream_ms: "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"
                  client: "%DOWNSTREAM_PEER_URI_SAN%"
                  peer: "%DOWNSTREAM_REMOTE_ADDRESS%"
          # Envoy's own refusals (unknown REST method or query parameter, unparsable JSON, body
          # too large, rate limited, upstream down) answer REST clients in the google.rpc.Status
          # JSON shape the transcoder gives upstream errors; gRPC callers get grpc-status.
          local_reply_config:
            mappers:
% for reply in local_replies:
            - filter:
                and_filter:
                  filters:
                  - status_code_filter:
                      comparison:
                        op: EQ
                        value: {default_value: ${reply.http_status}, runtime_key: edge_reply_${reply.http_status}}
  % if reply.code_details:
                  - extension_filter:
                      name: envoy.access_loggers.extension_filters.cel
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter
                        expression: "response.code_details == '${reply.code_details}'"
  % endif
                  - or_filter:
                      filters:
                      # a REST request: not gRPC, or gRPC only because the transcoder made it so
                      - header_filter:
                          header: {name: content-type, string_match: {prefix: application/grpc}, invert_match: true}
                      - header_filter:
                          header: {name: x-envoy-original-path, present_match: true}
                      - header_filter:
                          header: {name: content-type, present_match: false}
  % if reply.send_status:
              status_code: ${reply.send_status}
  % endif
              body_format_override:
                json_format: {code: ${reply.grpc_code}, message: "${reply.message}"}
% endfor
          route_config:
            name: edge
            # Room for /openapi.json, served by Envoy itself.
            max_direct_response_body_size_bytes: ${max_direct_response_bytes}
            virtual_hosts:
            - name: alea
              domains: ["*"]
              routes:
              # The JWKS is printed without default-valued fields: an OKP key has no y, n or e
              # (RFC 8037), and an empty member is not a valid JWK. Chosen, like SSE below, by
              # the REST route before the transcoder re-routes the request.
              - name: rest-jwks
                match:
                  safe_regex: {regex: "^/(v1/jwks|\\.well-known/jwks\\.json)$"}
                direct_response: {status: 404}
                typed_per_filter_config:
                  envoy.filters.http.grpc_json_transcoder:
${indent(capture(transcoder, sse=False, print_defaults=False), 20)}
              # The REST API described as OpenAPI, generated from the same contracts.
              - name: openapi
                match:
                  path: /openapi.json
                  headers:
                  - name: ":method"
                    string_match: {exact: GET}
                direct_response:
                  status: 200
                  body: {filename: "${openapi}"}
                response_headers_to_add:
                - header: {key: content-type, value: application/json}
                  append_action: OVERWRITE_IF_EXISTS_OR_ADD
                typed_per_filter_config:
                  envoy.filters.http.grpc_json_transcoder:
                    "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
                    disabled: true
              # The transcoder settles its options from the route of the REST request
              # before it rewrites the path, so SSE is chosen by this route and the
              # request then re-routes by its gRPC method path below.
              - name: rest-sse
                match:
                  prefix: "/v1/"
                  headers:
                  - name: accept
                    string_match: {contains: text/event-stream}
                direct_response: {status: 404}
                typed_per_filter_config:
                  envoy.filters.http.grpc_json_transcoder:
${indent(capture(transcoder, sse=True), 20)}
% for svc in services:
  % for rpc in svc.rpcs:
              - name: ${rpc.name}
                match: {path: "${rpc.path}"}
                route:
                  cluster: ${svc.name}
                  timeout: ${rpc.timeout}
    % if rpc.streaming:
                  idle_timeout: 0s
                typed_per_filter_config:
                  envoy.filters.http.buffer:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute
                    disabled: true
    % endif
    % if rpc.retry:
                  retry_policy:
                    retry_on: connect-failure,refused-stream,reset,unavailable
                    num_retries: 2
                    per_try_timeout: 5s
                    retry_back_off: {base_interval: 0.025s, max_interval: 0.25s}
    % endif
    % if rpc.ndjson:
                metadata:
                  filter_metadata:
                    envoy.filters.http.lua: {ndjson: true}
    % endif
  % endfor
% endfor
              # gRPC server reflection (v1 and v1alpha) describes every service routed here;
              # any healthy service answers, for the services Envoy names in the header.
% for reflection in reflection_services:
              - name: ${reflection}
                match: {path: "/${reflection}/ServerReflectionInfo"}
                route: {cluster: reflection, timeout: 0s}
                request_headers_to_add:
                - header: {key: x-alea-edge-services, value: "${",".join(proto_services)}"}
                  append_action: OVERWRITE_IF_EXISTS_OR_ADD
                typed_per_filter_config:
                  envoy.filters.http.buffer:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute
                    disabled: true
% endfor
              # Any other gRPC method is UNIMPLEMENTED at once (Envoy's 404 for gRPC); without
              # this route a stream would wait in the buffer filter for an end that never comes.
              - name: grpc-unrouted
                match: {prefix: "/", grpc: {}}
                direct_response:
                  status: 404
                  body: {inline_string: "no such method at this edge"}
                typed_per_filter_config:
                  envoy.filters.http.buffer:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute
                    disabled: true
          http_filters:
          - name: envoy.filters.http.local_ratelimit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              stat_prefix: edge_rate_limit
              token_bucket:
                max_tokens: ${rate_limit_burst}
                tokens_per_fill: ${rate_limit_per_s}
                fill_interval: 1s
              # Both default to 0%, which turns the filter into a no-op.
              filter_enabled:
                runtime_key: edge_rate_limit_enabled
                default_value: {numerator: 100, denominator: HUNDRED}
              filter_enforced:
                runtime_key: edge_rate_limit_enforced
                default_value: {numerator: 100, denominator: HUNDRED}
              # 429 for REST; gRPC callers get RESOURCE_EXHAUSTED rather than UNAVAILABLE.
              rate_limited_as_resource_exhausted: true
              response_headers_to_add:
              - header: {key: x-alea-rate-limited, value: "true"}
                append_action: OVERWRITE_IF_EXISTS_OR_ADD
          # Bounds request bodies (REST JSON and unary gRPC alike); streaming RPCs opt out
          # on their routes, since a stream is not one body.
          - name: envoy.filters.http.buffer
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
              max_request_bytes: ${max_request_bytes}
          # edge.lua: drops request headers that cannot be gRPC metadata, and finishes REST
          # replies the transcoder shapes only partly (after it on the way out): server
          # streams are labelled NDJSON, and its own 400s (a JSON value of the wrong type, two
          # members of a oneof) get google.rpc.BadRequest naming the field.
          - name: envoy.filters.http.lua
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
              default_source_code:
                inline_string: |
${indent(edge_lua, 18)}
          - name: envoy.filters.http.grpc_json_transcoder
            typed_config:
${indent(capture(transcoder, sse=False), 14)}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
              suppress_envoy_headers: false

% if health_port:
  # Plaintext readiness for orchestrators (Kubernetes probes cannot present a client
  # certificate); it fails while Envoy drains, so traffic moves away before shutdown.
  - name: health
    address:
      socket_address: {address: ${listen_address}, port_value: ${health_port}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: health
          route_config:
            virtual_hosts:
            - name: health
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                direct_response: {status: 404}
          http_filters:
          - name: envoy.filters.http.health_check
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck
              pass_through_mode: false
              headers:
              - name: ":path"
                string_match: {exact: /ready}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router

% endif
  clusters:
% for svc in services:
  - name: ${svc.name}
    type: ${"STATIC" if svc.host == "127.0.0.1" else "STRICT_DNS"}
    dns_lookup_family: V4_ONLY
    connect_timeout: 2s
    lb_policy: ROUND_ROBIN
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {max_concurrent_streams: 1000}
    load_assignment:
      cluster_name: ${svc.name}
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {address: ${svc.host}, port_value: ${svc.port}}
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: localhost
        common_tls_context:
          alpn_protocols: [h2]
          tls_certificates:${tls_certificate("edge")}
          validation_context:
            trusted_ca: {filename: "${pki}/ca.crt"}
            # The upstream must prove it is this very service, not just any mesh member.
            match_typed_subject_alt_names:
            - san_type: URI
              matcher: {exact: "spiffe://alea/${svc.name}"}
    health_checks:
    - timeout: 1s
      interval: 5s
      no_traffic_interval: 5s
      unhealthy_threshold: 2
      healthy_threshold: 1
      grpc_health_check: {}
    circuit_breakers:
      thresholds:
      - priority: DEFAULT
        max_connections: 1024
        max_pending_requests: 1024
        # Open streams (feeds, watches) count as requests for as long as they last: room
        # for as many as a replica holds (ALEA_MAX_STREAMS, past which the service itself
        # refuses them) and 1,024 calls besides. (Routing streams to the HIGH priority's
        # breaker instead gave each first stream a new upstream connection to wait for.)
        max_requests: ${max_streams + 1024}
        max_retries: 8
    outlier_detection:
      consecutive_5xx: 5
      consecutive_gateway_failure: 5
      interval: 10s
      base_ejection_time: 15s
      max_ejection_percent: 100
% endfor
  # Reflection streams go to the first healthy service, in the order above.
  - name: reflection
    connect_timeout: 2s
    lb_policy: CLUSTER_PROVIDED
    cluster_type:
      name: envoy.clusters.aggregate
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig
        clusters: [${", ".join(svc.name for svc in services)}]
% if otlp_collector:
  ## --- tracing (OpenTelemetry): the collector, as the services reach it ------------------
  - name: opentelemetry_collector
    type: ${"STATIC" if otlp_collector[0].replace(".", "").isdigit() else "STRICT_DNS"}
    dns_lookup_family: V4_ONLY
    connect_timeout: 2s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}
    load_assignment:
      cluster_name: opentelemetry_collector
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {address: ${otlp_collector[0]}, port_value: ${otlp_collector[1]}}
  ## --- tracing: end -------------------------------------------------------------------------
% endif
