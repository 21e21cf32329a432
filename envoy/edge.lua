-- Runs on every request of the edge before the gRPC-JSON transcoder, and on every response
-- after it (see envoy.yaml.mako).

-- Headers travel upstream as gRPC metadata, whose keys are [0-9a-z_.-] and whose values are
-- printable ASCII (or any bytes for "-bin" keys); gRPC refuses a whole call with another
-- header as INTERNAL. HTTP allows more, and a header Alea does not know means nothing to it,
-- so such headers are dropped here.
function envoy_on_request(handle)
  local headers = handle:headers()
  local invalid = {}
  for key, value in pairs(headers) do
    local binary = key:sub(-4) == "-bin"
    if key:sub(1, 1) ~= ":" and (key:find("[^0-9a-z_.%-]") or (not binary and value:find("[^\32-\126]"))) then
      invalid[#invalid + 1] = key
    end
  end
  for _, key in ipairs(invalid) do
    headers:remove(key)
  end
end

-- A REST reply of a server-streaming RPC is newline-delimited JSON, one message a line.
local function label_ndjson(handle, headers)
  if headers:get(":status") == "200" and handle:metadata():get("ndjson") then
    headers:replace("content-type", "application/x-ndjson")
  end
end

-- The transcoder's own 400s (a JSON value of the wrong type, two members of a oneof, an
-- unknown query parameter) arrive as {"code":3,"message":"FIELD: REASON"} from
-- local_reply_config; upstream errors always carry "details". Add google.rpc.BadRequest
-- naming the field, as the services do.
local function add_bad_request(handle)
  local body = handle:body()
  if body == nil then
    return
  end
  local json = body:getBytes(0, body:length())
  if json:find('"details"', 1, true) then
    return
  end
  local message = json:match('"message":"(.*)"}%s*$')
  if message == nil then
    return
  end
  local field, reason = message:match("^([%w_.%[%]]*): (.*)$")
  if field == nil then
    -- an unknown query parameter: Could not find field \"colour\" in the type \"...\".
    field = message:match('^Could not find field \\"([%w_.]+)\\"')
    reason = message
  elseif field == "" then
    -- two members of a oneof, or an object where a scalar belongs: the name is in the reason
    field = reason:match("oneof field '([%w_]+)'") or reason:match("scalar field for type ([%w_]+)$")
  end
  if field == nil then
    return
  end
  body:setBytes(
    '{"code":3,"message":"' .. field .. ": " .. reason .. '","details":[{"@type":'
      .. '"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"'
      .. field .. '","description":"' .. reason .. '"}]}]}'
  )
end

function envoy_on_response(handle)
  local headers = handle:headers()
  if headers:get("content-type") ~= "application/json" then
    return
  end
  if headers:get(":status") == "400" then
    add_bad_request(handle)
  else
    label_ndjson(handle, headers)
  end
end
