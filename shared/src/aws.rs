//! AWS clients from the standard environment (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL` for emulators),
//! plus the one setting the SDK has no variable for: path-style S3 addressing.

use crate::config::Config;

pub struct AwsClients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    /// Clients over an already loaded shared config (tests build one pointing at an emulator).
    pub fn from_shared(shared: &aws_config::SdkConfig, force_path_style: bool) -> Self {
        let s3_config = aws_sdk_s3::config::Builder::from(shared)
            .force_path_style(force_path_style)
            .build();
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sqs: aws_sdk_sqs::Client::new(shared),
        }
    }
}

pub async fn clients(config: &Config) -> AwsClients {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    AwsClients::from_shared(&shared, config.s3_force_path_style)
}
