# frozen_string_literal: true

require "aws-sdk-s3"

# The app's S3 bucket (S3_BUCKET, in AWS_REGION). Credentials come from the AWS SDK's standard
# chain: the instance profile on AWS. A local farm's S3 is moto behind a TLS front: S3_ENDPOINT
# names it (path-style addressing), AWS_CA_BUNDLE its CA and the keys are moto's.
class BookStorage
  def initialize(bucket: ENV.fetch("S3_BUCKET"), client: nil)
    @bucket = bucket
    @client = client || Aws::S3::Client.new(**self.class.client_options)
  end

  attr_reader :bucket

  def self.client_options
    options = { region: ENV.fetch("AWS_REGION", "us-east-1") }
    if ENV["S3_ENDPOINT"].present?
      options[:endpoint] = ENV["S3_ENDPOINT"]
      options[:force_path_style] = true
    end
    options[:ssl_ca_bundle] = ENV["AWS_CA_BUNDLE"] if ENV["AWS_CA_BUNDLE"].present?
    options
  end

  def download(key, path)
    @client.get_object(bucket: @bucket, key: key, response_target: path.to_s)
  end

  def upload(path, key, content_type)
    File.open(path, "rb") do |body|
      @client.put_object(bucket: @bucket, key: key, body: body, content_type: content_type)
    end
    key
  end
end
