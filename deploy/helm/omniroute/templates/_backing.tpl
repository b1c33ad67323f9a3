{{/*
A bundled backing server: a one-replica StatefulSet with a PersistentVolumeClaim, and its Service.
(dict "root" $ "component" "redis" "port" 6379 "mountPath" "/data" "args" (list ...) "env" (list ...)
      "probe" <handler> "liveness" <handler, optional> "scratch" (list of writable paths, emptyDirs)
      "readOnlyRoot" <bool>)
*/}}
{{- define "omniroute.backing" -}}
{{- $root := .root -}}
{{- $b := (index $root.Values .component).bundled -}}
{{- $name := include "omniroute.componentName" . -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "omniroute.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "omniroute.selectorLabels" . | nindent 4 }}
  ports:
    - name: {{ .component }}
      port: {{ .port }}
      targetPort: {{ .component }}
      protocol: TCP
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ $name }}
  labels:
    {{- include "omniroute.labels" . | nindent 4 }}
spec:
  serviceName: {{ $name }}
  replicas: 1
  selector:
    matchLabels:
      {{- include "omniroute.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "omniroute.selectorLabels" . | nindent 8 }}
    spec:
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: 30
      securityContext:
        {{- toYaml (merge (dict "seccompProfile" (dict "type" "RuntimeDefault")) $b.podSecurityContext) | nindent 8 }}
      containers:
        - name: {{ .component }}
          image: {{ printf "%s:%s" $b.image.repository $b.image.tag | quote }}
          imagePullPolicy: {{ $b.image.pullPolicy }}
          {{- with .args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with .env }}
          env:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: {{ .readOnlyRoot }}
            capabilities:
              drop: [ALL]
          ports:
            - name: {{ .component }}
              containerPort: {{ .port }}
              protocol: TCP
            {{- with .monitorPort }}
            - name: monitor
              containerPort: {{ . }}
              protocol: TCP
            {{- end }}
          startupProbe:
            {{- toYaml .probe | nindent 12 }}
            periodSeconds: 2
            timeoutSeconds: 5
            failureThreshold: 90
          readinessProbe:
            {{- toYaml .probe | nindent 12 }}
            periodSeconds: 5
            timeoutSeconds: 5
          livenessProbe:
            {{- toYaml (.liveness | default .probe) | nindent 12 }}
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 6
          resources:
            {{- toYaml $b.resources | nindent 12 }}
          volumeMounts:
            - name: data
              mountPath: {{ .mountPath }}
            {{- range $i, $path := .scratch }}
            - name: {{ printf "scratch-%d" $i }}
              mountPath: {{ $path }}
            {{- end }}
      {{- if .scratch }}
      volumes:
        {{- range $i, $path := .scratch }}
        - name: {{ printf "scratch-%d" $i }}
          emptyDir: {}
        {{- end }}
      {{- end }}
      {{- with ($b.nodeSelector | default $root.Values.nodeSelector) }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with ($b.tolerations | default $root.Values.tolerations) }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $b.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  volumeClaimTemplates:
    - metadata:
        name: data
        labels:
          {{- include "omniroute.selectorLabels" . | nindent 10 }}
      spec:
        accessModes:
          {{- toYaml $b.persistence.accessModes | nindent 10 }}
        {{- with $b.persistence.storageClass }}
        storageClassName: {{ . | quote }}
        {{- end }}
        resources:
          requests:
            storage: {{ $b.persistence.size }}
{{- end -}}
