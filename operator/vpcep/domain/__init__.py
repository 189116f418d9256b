"""Pure decisions of vpcep-operator: frozen facts in, a value out; no clock, no I/O, no logging.

Modules and the SPEC rules each implements:

- `facts`       small frozen projections (ServiceView, EndpointView, WhitelistView, Refusal) the rest reads,
                and `is_established`, the one predicate for an endpoint in Creating or Accepted (R7, R14).
- `reasons`     the CamelCase reason constants used in status, conditions, Events and refusals (R39).
- `naming`      `<region>.<name>.<serviceId>` service names and their parsing (R5, R15, R40).
- `accounts`    accounts from namespace labels, whitelist entries `iam:domain::<a>` / `*` (SPEC §2, R12).
- `permission`  who may connect: own account, whitelists adding up, `*`, system services (R12, R13, R14, R37).
- `approval`    accept / pending / reject, autoAcceptAccounts, explicit Reject wins (R10, R10a, R11).
- `quota`       per-account limits with overrides, who holds quota when over (R9, R22).
- `allocation`  monotonic marker ids per service (R33) and gateway listen ports from a range (R30).
- `conditions`  condition specs and merging with stable lastTransitionTime (R39).
- `validation`  spec checks mirroring the CRD's CEL rules, for the webhook (R3, R12, R15, R34).
- `backend`     is the backend the provider's own: no ExternalName, selector-less, idle or hostNetwork (R45).
- `lookup`      find the target service by name and region, or cloud-service short name (R15, R16, R37, R40).
- `service`     `decide_service`, `service_status`, `check_service_admission`, `check_service_deletion`
                (R1, R2, R4, R5, R6, R7, R8, R9).
- `endpoint`    `decide_endpoint` (the chain `ENDPOINT_CHECKS`), `endpoint_status`, `check_endpoint_admission`
                (R7, R10-R18, R22, R23, R32, R33, R34, R38, R42).
- `whitelist`   `decide_whitelist`, `check_whitelist_admission` (R12).
"""
