//! AWS: the only module that talks to AWS (SNS alerts, CloudWatch metrics).
