-- Argo CD health check for the four vpcep.io kinds (EndpointService, Endpoint, Whitelist, EndpointConnection).
-- Argo CD runs it with the live object in `obj`; it returns {status, message}. docs/observability.md.
local hs = {}
local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the vpcep operator to report a status"
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the vpcep operator to reconcile generation " .. tostring(generation)
  return hs
end
-- Endpoints, EndpointServices and Whitelists have a phase; an EndpointConnection shows its Endpoint's as state.
local phase = status.phase or status.state
local verdicts = {
  Available = "Healthy", Accepted = "Healthy", Active = "Healthy",
  Creating = "Progressing", PendingAcceptance = "Progressing", Deleting = "Progressing",
  Failed = "Degraded", Rejected = "Degraded",
}
hs.status = verdicts[phase] or (phase == nil and "Progressing") or "Unknown"
local detail = status.message
if detail == nil or detail == "" then
  detail = status.reason
end
if phase == nil then
  hs.message = detail or "Waiting for the vpcep operator to set a phase"
elseif detail ~= nil and detail ~= "" then
  hs.message = phase .. ": " .. detail
else
  hs.message = phase
end
return hs
