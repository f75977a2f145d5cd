/**
 * A region's VPC: two AZs, public subnets (ALB, media hosts with public IPs) and private subnets with a
 * NAT gateway per AZ (LB tasks), so losing one AZ leaves the other's egress intact. DynamoDB traffic
 * takes a gateway endpoint: it never depends on NAT and costs nothing per byte.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

const AZ_COUNT = 2;

export interface RegionNetworkProps {
  /** IPv4 CIDR of the VPC, /16 to /24; split evenly over the four subnets. */
  readonly cidr: string;
}

export class RegionNetwork extends Construct {
  readonly vpc: ec2.Vpc;

  constructor(scope: Construct, id: string, props: RegionNetworkProps) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, 'Resource', {
      ipAddresses: ec2.IpAddresses.cidr(props.cidr),
      maxAzs: AZ_COUNT,
      natGateways: AZ_COUNT,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, mapPublicIpOnLaunch: false },
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      ],
      // Nothing uses the default security group; restricting it needs a custom-resource Lambda.
      restrictDefaultSecurityGroup: false,
    });
    this.vpc.addGatewayEndpoint('DynamoDb', { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB });

    // Rejected flows only: accepted media traffic is the bulk of all bytes and would dominate the bill.
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
      trafficType: ec2.FlowLogTrafficType.REJECT,
    });
  }
}
