"""`farm ps:scale` and `ps:autoscale`: the plan, the instances that come and go, the steps, the policy."""
