{{/*
One service's Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget:
(dict "root" $ "component" "edge" "probe" <a probe handler> "liveness" <optional other handler> "dataDir" <bool>).
*/}}
{{- define "omniroute.workload" -}}
{{- $root := .root -}}
{{- $c := .component -}}
{{- $svc := index $root.Values $c -}}
{{- $name := include "omniroute.componentName" . -}}
{{- $grpc := has $c (list "translator" "executor" "usage") -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "omniroute.labels" . | nindent 4 }}
spec:
  {{- if not $svc.autoscaling.enabled }}
  replicas: {{ $svc.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  selector:
    matchLabels:
      {{- include "omniroute.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "omniroute.selectorLabels" . | nindent 8 }}
      annotations:
        # a change of the settings or of the chart's Secret rolls the pods
        checksum/config: {{ print (include "omniroute.sharedConfig" $root) (include "omniroute.serviceConfig" .) | sha256sum }}
        {{- if and (not $root.Values.secrets.existingSecret) (include "omniroute.secretEnv" .) }}
        checksum/secret: {{ include "omniroute.secretInputs" $root | sha256sum }}
        {{- end }}
        {{- with (merge (dict) $svc.podAnnotations $root.Values.podAnnotations) }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $svc.terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ $c }}
          image: {{ include "omniroute.image" . | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          ports:
            - name: {{ ternary "grpc" "http" $grpc }}
              containerPort: {{ $svc.port }}
              protocol: TCP
            - name: metrics
              containerPort: {{ $svc.metricsPort }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "omniroute.fullname" $root }}
            - configMapRef:
                name: {{ $name }}
          {{- $env := include "omniroute.secretEnv" . | trim }}
          {{- if or $env $svc.extraEnv }}
          env:
            {{- with $env }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with $svc.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- end }}
          startupProbe:
            {{- toYaml .probe | nindent 12 }}
            periodSeconds: 2
            timeoutSeconds: 3
            failureThreshold: 60
          readinessProbe:
            {{- toYaml .probe | nindent 12 }}
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          livenessProbe:
            {{- toYaml (.liveness | default .probe) | nindent 12 }}
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 3
          {{- if $svc.preStopSleepSeconds }}
          lifecycle:
            preStop:
              # the endpoint leaves the Service before SIGTERM starts the drain
              sleep:
                seconds: {{ $svc.preStopSleepSeconds }}
          {{- end }}
          resources:
            {{- toYaml $svc.resources | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if .dataDir }}
            - name: data
              mountPath: /var/lib/omniroute
            {{- end }}
      volumes:
        - name: tmp
          emptyDir: {}
        {{- if .dataDir }}
        - name: data
          emptyDir:
            {{- with .dataSizeLimit }}
            sizeLimit: {{ . }}
            {{- end }}
        {{- end }}
      {{- with ($svc.nodeSelector | default $root.Values.nodeSelector) }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with ($svc.tolerations | default $root.Values.tolerations) }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with ($svc.affinity | default $root.Values.affinity) }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $svc.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- range . }}
        - {{ toYaml (merge (deepCopy .) (dict "labelSelector" (dict "matchLabels" (include "omniroute.selectorLabels" $ | fromYaml)))) | nindent 10 | trim }}
        {{- end }}
      {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "omniroute.labels" . | nindent 4 }}
  {{- with $svc.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $svc.service.type | default "ClusterIP" }}
  selector:
    {{- include "omniroute.selectorLabels" . | nindent 4 }}
  ports:
    - name: {{ ternary "grpc" "http" $grpc }}
      port: {{ $svc.port }}
      targetPort: {{ ternary "grpc" "http" $grpc }}
      protocol: TCP
      appProtocol: {{ ternary "kubernetes.io/h2c" "http" $grpc }}
    - name: metrics
      port: {{ $svc.metricsPort }}
      targetPort: metrics
      protocol: TCP
{{- if has $c (list "translator" "executor") }}
---
# the gRPC clients' address (TRANSLATOR_ADDR, EXECUTOR_ADDR): its DNS name resolves to every ready pod, and the
# clients keep a connection to each and spread their calls over them (a ClusterIP balances connections only)
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}-headless
  labels:
    {{- include "omniroute.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  clusterIP: None
  selector:
    {{- include "omniroute.selectorLabels" . | nindent 4 }}
  ports:
    - name: grpc
      port: {{ $svc.port }}
      targetPort: grpc
      protocol: TCP
      appProtocol: kubernetes.io/h2c
{{- end }}
{{- if $svc.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  labels:
    {{- include "omniroute.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicas: {{ $svc.autoscaling.minReplicas }}
  maxReplicas: {{ $svc.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $svc.autoscaling.targetCPUUtilizationPercentage }}
    {{- with $svc.autoscaling.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
  {{- with $svc.autoscaling.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- if $svc.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  labels:
    {{- include "omniroute.labels" . | nindent 4 }}
spec:
  {{- if hasKey $svc.pdb "maxUnavailable" }}
  maxUnavailable: {{ $svc.pdb.maxUnavailable }}
  {{- else }}
  minAvailable: {{ $svc.pdb.minAvailable | default 1 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "omniroute.selectorLabels" . | nindent 6 }}
{{- end }}
{{- if $root.Values.serviceMonitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ $name }}
  labels:
    {{- include "omniroute.labels" . | nindent 4 }}
    {{- with $root.Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "omniroute.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: metrics
      path: /metrics
      interval: {{ $root.Values.serviceMonitor.interval }}
{{- end }}
{{- end -}}
