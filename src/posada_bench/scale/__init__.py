"""Past one machine: the pooler, the load balancer and the replicas the scale test runs."""
