"""The kubectl plugin (`kubectl vpcep ...`): what tenants need to connect and debug without cluster-admin."""
