import type { ErrorCode } from '../domain/errors.ts';

/** An error in AWS's JSON protocol shape: `{"__type": type, "message": message}`. */
export class AwsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'AwsError';
  }
}

/** Every domain error code as ECR names it (exception names from ECR's service model). */
export const ECR_ERRORS = {
  BLOB_UNKNOWN: 'LayersNotFoundException',
  BLOB_UPLOAD_INVALID: 'InvalidLayerException',
  BLOB_UPLOAD_UNKNOWN: 'UploadNotFoundException',
  DIGEST_INVALID: 'InvalidParameterException',
  MANIFEST_BLOB_UNKNOWN: 'LayersNotFoundException',
  MANIFEST_INVALID: 'InvalidParameterException',
  MANIFEST_UNKNOWN: 'ImageNotFoundException',
  NAME_INVALID: 'InvalidParameterException',
  NAME_UNKNOWN: 'RepositoryNotFoundException',
  SIZE_INVALID: 'InvalidParameterException',
  RANGE_INVALID: 'InvalidLayerPartException',
  TAG_INVALID: 'InvalidParameterException',
  UNAUTHORIZED: 'UnrecognizedClientException',
  DENIED: 'AccessDeniedException',
  UNSUPPORTED: 'ValidationException',
  TOOMANYREQUESTS: 'ThrottlingException',
  PAGINATION_NUMBER_INVALID: 'InvalidParameterException',
  PAYLOAD_TOO_LARGE: 'InvalidParameterException',
  ROUTE_UNKNOWN: 'UnknownOperationException',
  METHOD_NOT_ALLOWED: 'UnknownOperationException',
  UPSTREAM_FAILED: 'ServerException',
  UNAVAILABLE: 'ServerException',
  INTERNAL: 'ServerException',
} as const satisfies Record<ErrorCode, string>;
